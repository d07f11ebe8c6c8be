"""Eval generation throughput of a run's base and tuned models, before and after the one engine.

Before (what eval did until issue 13): transformers' `generate` on batches of prompts, finished rows
kept in the batch until the longest ends, and the tuned model an unmerged peft model (LoRA matmuls
beside every frozen one). After: tunesmith's engine (finished rows leave the batch) on the tuned
model with its adapter merged into the weights at load. Same run, same prompts, same dtype, greedy.

  python bench/bench_eval_tuned.py runs/NAME --examples 32 --max-new-tokens 64 --batch-size 16

Throughput = generated tokens (counting the EOS each answer stopped on) per second of wall time.
Results: printed as a table and written to bench/results/eval_tuned.json.

Measured 2026-11-30 on the 2-core dev machine shared with four other jobs (load average 4-10, so
only ratios within one run mean anything), on a run of the bundled example (4 LoRA steps), bf16:

  --examples 8 --max-new-tokens 16 --batch-size 8 --fixed-length (per-token cost alone):
    before, transformers generate: base 2.8 tok/s, tuned (adapter unmerged) 1.7 tok/s
    engine, tuned adapter unmerged 1.7 tok/s; after, engine: base 2.8 tok/s, tuned merged 2.7 tok/s
  => the tuned model's slowness was the unmerged adapter (1.65x the base's time per token here);
     merged at load it costs what the base costs; the engine matches transformers' generate.
  --examples 16 --max-new-tokens 32 --batch-size 8 (with EOS; load ~10, noisy):
    before: base 1.1, tuned unmerged 0.8 tok/s; after: base 6.8, tuned merged 1.9 tok/s
    (answers that end early leave the batch, so tok/s also depends on how long answers are)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import eval_report
import torch

from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine import Sequence, generate, stop_token_ids
from tunesmith.engine.batch import left_pad
from tunesmith.loading import load_for_use

FAQ = Path(__file__).resolve().parents[1] / "examples" / "lumen_faq.jsonl"


def hf_batched(model, tokenizer, prompts, max_new_tokens: int, batch_size: int, stops: set[int]) -> int:
    """The old eval path: `model.generate` per batch of prompts sorted by length; generated tokens."""
    order = sorted(prompts, key=len, reverse=True)
    tokens = 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            ids, mask = left_pad(order[start:start + batch_size], tokenizer.pad_token_id, "cpu")
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=sorted(stops) or None, pad_token_id=tokenizer.pad_token_id,
                                 min_new_tokens=max_new_tokens if not stops else None)
            for row in out[:, ids.shape[1]:].tolist():  # every row is max_new_tokens wide (or ends on EOS)
                stop = next((k for k, t in enumerate(row) if t in stops), None)
                tokens += len(row) if stop is None else stop + 1
    return tokens


def engine(model, tokenizer, prompts, max_new_tokens: int, batch_size: int, stops: set[int]) -> int:
    sequences = [Sequence(p, max_new_tokens) for p in prompts]
    generate(model, tokenizer, sequences, stops, batch_size=batch_size)
    return sum(s.new_tokens for s in sequences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--fixed-length", action="store_true",
                        help="ignore EOS: every answer is max_new_tokens long, so tok/s compares cost alone "
                             "(with EOS, a model whose answers end early keeps fewer rows busy)")
    args = parser.parse_args()

    rows = [json.loads(line) for line in FAQ.read_text(encoding="utf-8").splitlines() if line.strip()]
    models = {
        "base": load_for_use(args.run_dir, dtype=args.dtype, base_only=True),
        "tuned, adapter unmerged": load_for_use(args.run_dir, dtype=args.dtype, merge_adapter=False),
        "tuned, adapter merged at load": load_for_use(args.run_dir, dtype=args.dtype),
    }
    plan = [("before: transformers generate", "base", hf_batched),
            ("before: transformers generate", "tuned, adapter unmerged", hf_batched),
            ("engine", "tuned, adapter unmerged", engine),
            ("after: engine", "base", engine),
            ("after: engine", "tuned, adapter merged at load", engine)]
    results = []
    for method, name, run in plan:
        loaded = models[name]
        messages = [[{"role": "user", "content": row["question"]}] for row in rows[:args.examples]]
        prompts = [encode_prompt(loaded.tokenizer, loaded.template, m) for m in messages]
        stops = set() if args.fixed_length else stop_token_ids(loaded.model, loaded.tokenizer,
                                                                 loaded.template.stop_strings)
        run(loaded.model, loaded.tokenizer, prompts[:2], 4, 2, stops)  # warm-up
        started = time.perf_counter()
        tokens = run(loaded.model, loaded.tokenizer, prompts, args.max_new_tokens, args.batch_size, stops)
        seconds = time.perf_counter() - started
        results.append({"method": method, "model": name, "dtype": loaded.policy.dtype, "tokens": tokens,
                        "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)})
    print(f"{args.run_dir}: {args.examples} FAQ questions, greedy, max_new_tokens {args.max_new_tokens}, "
          f"batch {args.batch_size}; {eval_report.machine()}"
          f"{', EOS ignored (fixed length)' if args.fixed_length else ''}\n")
    print(eval_report.markdown(["method", "model", "dtype", "generated tokens>", "seconds>", "tok/s>"],
                               [[r["method"], r["model"], r["dtype"], r["tokens"], r["seconds"], r["tokens_per_s"]]
                                for r in results]))
    eval_report.save("eval_tuned", results)


if __name__ == "__main__":
    main()
