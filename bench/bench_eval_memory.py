"""Peak memory of evaluation as the test split grows: it must stay flat (no logits kept around).

Each size runs in its own process: load the embedded model, then evaluate N test examples (the
first 100 bundled FAQ questions, repeated) exactly as `compare` does for one model: batched
generation, scoring, and perplexity of every reference answer. Memory is the process's resident
set, sampled every 20 ms during evaluation; "all logits" is what keeping the logits of every
scored sequence (fp32) would have needed instead.

  python bench/bench_eval_memory.py --sizes 100 1000 --max-new-tokens 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
from peak_rss import PeakRss

FAQ = Path(__file__).resolve().parents[1] / "examples" / "lumen_faq.jsonl"
POOL = 100


def child(size: int, max_new_tokens: int, batch_size: int, model_spec: str) -> dict:
    from tunesmith.data.templates import resolve_template
    from tunesmith.data.tokenize import encode_prompt
    from tunesmith.evaluate.examples import EvalExample, Task
    from tunesmith.evaluate.model_eval import EvalSettings, run_model
    from tunesmith.models import load_model, load_tokenizer, resolve_model
    from tunesmith.precision import load_policy

    path = resolve_model(model_spec).path
    tokenizer = load_tokenizer(path)
    template = resolve_template("auto", tokenizer)
    model = load_model(path, load_policy("auto").torch_dtype).eval()
    # the same 100 questions, repeated: every size has the same length distribution (and longest batch)
    rows = [json.loads(line) for line in FAQ.read_text(encoding="utf-8").splitlines() if line.strip()][:POOL]
    examples = [
        EvalExample(k, f"faq:{k % len(rows) + 1}", [{"role": "user", "content": rows[k % len(rows)]["question"]}], "",
                    rows[k % len(rows)]["answer"])
        for k in range(size)
    ]  # fmt: skip
    settings = EvalSettings(max_new_tokens, batch_size, None, Task("expansion", "benchmark"))
    run_model(model, tokenizer, template, examples[:batch_size], settings)  # warm-up: allocator and kernels
    loaded = psutil.Process().memory_info().rss
    started = time.perf_counter()
    with PeakRss() as sampler:
        records, metrics = run_model(model, tokenizer, template, examples, settings)
    prompt_tokens = sum(len(encode_prompt(tokenizer, template, e.messages)) for e in examples)
    scored_tokens = prompt_tokens + sum(r["answer_tokens"] for r in records)
    return {
        "examples": size,
        "seconds": round(time.perf_counter() - started, 1),
        "generated_tokens": metrics["generated_tokens"],
        "rss_loaded_mb": loaded >> 20,
        "peak_rss_mb": sampler.peak >> 20,
        "growth_mb": (sampler.peak - loaded) >> 20,
        "all_logits_gb": round(scored_tokens * model.config.vocab_size * 4 / 2**30, 1),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.max_new_tokens, args.batch_size, args.model)))
        return
    results = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--child", str(size), "--max-new-tokens", str(args.max_new_tokens),
                   "--batch-size", str(args.batch_size), "--model", args.model]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    load = os.getloadavg()
    print(f"model {args.model} ({results[0]['dtype']}), batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, "
          f"load average {load[0]:.2f} {load[1]:.2f}\n")  # fmt: skip
    print("| test examples | generated tokens | seconds | RSS after load (MB) | peak RSS in eval (MB) | growth (MB) |"
          " all logits kept would need (GB) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['examples']:,} | {r['generated_tokens']:,} | {r['seconds']} | {r['rss_loaded_mb']:,} | "
              f"{r['peak_rss_mb']:,} | {r['growth_mb']:,} | {r['all_logits_gb']} |")  # fmt: skip


if __name__ == "__main__":
    main()
