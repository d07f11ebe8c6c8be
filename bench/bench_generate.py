"""Generation throughput: tunesmith's engine (batched) against calling `model.generate` per example.

One run, side by side, on the embedded SmolLM2-135M-Instruct and the bundled FAQ questions:

  1. baseline: `model.generate` one example at a time (greedy, KV cache), bf16 or fp32 as chosen
  2. tunesmith: `tunesmith.engine.generate`, batched (finished rows leave, waiting ones join), same dtype
     (1 and 2 alternate, one batch of prompts at a time, so a shared machine's load hits both alike)
  3. quality check: the batched run again in the other dtype; token F1 / ROUGE-L against the
     reference answers and agreement with the baseline's answers show whether bf16 costs quality

Throughput = generated tokens (counting the EOS each answer stopped on) per second of wall time.

  python bench/bench_generate.py --examples 32 --max-new-tokens 64 --batch-size 16

Measured 2026-11-27 on the 2-core Sapphire Rapids dev machine, quiet (load average ~1.9), through
bench/run_all.py with --skip-quality: one at a time bf16 28.4 tok/s; batched (16) bf16 296.5 tok/s = 10.4x.
An earlier run on a shared machine (load ~6.5, OMP_NUM_THREADS=1) gave 9.2 vs 74.0 tok/s (8.1x), and
token F1 / ROUGE-L against the references of bf16 0.113 / 0.117, fp32 0.121 / 0.123 (32 questions).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine import Sequence, generate, stop_token_ids
from tunesmith.evaluate.metrics import rouge_l, token_f1
from tunesmith.models import load_model, load_tokenizer, resolve_model
from tunesmith.precision import bf16_native

FAQ = Path(__file__).resolve().parents[1] / "examples" / "lumen_faq.jsonl"


def questions(count: int) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in FAQ.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["question"], row["answer"]) for row in rows[:count]]


def one_at_a_time(model, tokenizer, prompts: list[list[int]], max_new_tokens: int) -> tuple[list[str], int, float]:
    """The baseline: plain `model.generate` per prompt. Returns (texts, generated tokens, seconds)."""
    eos = sorted(stop_token_ids(model, tokenizer))
    texts, tokens = [], 0
    started = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([prompt])
            out = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                do_sample=False, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
            new = out[0, len(prompt) :].tolist()
            stop = next((k for k, t in enumerate(new) if t in eos), None)
            tokens += len(new) if stop is None else stop + 1
            texts.append(tokenizer.decode(new[:stop], skip_special_tokens=True))
    return texts, tokens, time.perf_counter() - started


def batched(model, tokenizer, prompts, max_new_tokens: int, batch_size: int, stops) -> tuple[list[str], int, float]:
    started = time.perf_counter()
    out = [Sequence(p, max_new_tokens, stop_strings=stops) for p in prompts]
    generate(model, tokenizer, out, stop_token_ids(model, tokenizer, stops), batch_size=batch_size)
    return [g.text for g in out], sum(g.new_tokens for g in out), time.perf_counter() - started


def quality(texts: list[str], references: list[str]) -> dict[str, float]:
    return {
        "token_f1": round(statistics.mean(token_f1(t, r) for t, r in zip(texts, references, strict=True)), 4),
        "rouge_l": round(statistics.mean(rouge_l(t, r) for t, r in zip(texts, references, strict=True)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", choices=["auto", "bf16", "fp32"], default="auto")
    parser.add_argument("--skip-quality", action="store_true", help="skip the other-dtype quality run")
    args = parser.parse_args()

    bf16 = args.dtype == "bf16" or (args.dtype == "auto" and bf16_native("cpu"))
    dtype, other = (torch.bfloat16, torch.float32) if bf16 else (torch.float32, torch.bfloat16)
    path = resolve_model(args.model).path
    tokenizer = load_tokenizer(path)
    template = resolve_template("auto", tokenizer)
    pairs = questions(args.examples)
    prompts = [encode_prompt(tokenizer, template, [{"role": "user", "content": q}]) for q, _ in pairs]
    references = [a for _, a in pairs]
    model = load_model(path, dtype).eval()
    batched(model, tokenizer, prompts[:2], 4, 2, template.stop_strings)  # warm-up

    # Interleaved rounds (one batch of prompts each, baseline then batched) so that a shared
    # machine's changing load hits both methods alike.
    settings = (args.max_new_tokens, args.batch_size, template.stop_strings)
    totals = {"baseline": [[], 0, 0.0], "batched": [[], 0, 0.0]}
    for start in range(0, len(prompts), args.batch_size):
        chunk = prompts[start : start + args.batch_size]
        for name, result in (
            ("baseline", one_at_a_time(model, tokenizer, chunk, args.max_new_tokens)),
            ("batched", batched(model, tokenizer, chunk, *settings)),
        ):
            totals[name][0] += result[0]
            totals[name][1] += result[1]
            totals[name][2] += result[2]
    (baseline_texts, tokens, seconds), (texts, new_tokens, new_seconds) = totals["baseline"], totals["batched"]
    rows = [
        ("model.generate, one at a time", dtype, 1, tokens, seconds, quality(baseline_texts, references), 1.0),
        ("tunesmith generate, batched", dtype, args.batch_size, new_tokens, new_seconds, quality(texts, references),
         _agreement(texts, baseline_texts)),
    ]  # fmt: skip
    if not args.skip_quality:
        model = load_model(path, other).eval()
        texts, tokens, seconds = batched(model, tokenizer, prompts, *settings)
        rows.append(("tunesmith generate, batched", other, args.batch_size, tokens, seconds,
                     quality(texts, references), _agreement(texts, baseline_texts)))  # fmt: skip
    _print(rows, args, path)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "generate.json").write_text(json.dumps([
        {"method": name, "dtype": str(dtype).removeprefix("torch."), "batch": batch, "tokens": tokens,
         "seconds": seconds, "tokens_per_s": tokens / seconds, **scores, "agreement": agree}
        for name, dtype, batch, tokens, seconds, scores, agree in rows
    ], indent=2) + "\n")  # fmt: skip


def _agreement(texts: list[str], baseline: list[str]) -> float:
    return round(sum(a == b for a, b in zip(texts, baseline, strict=True)) / len(texts), 3)


def _print(rows, args, path) -> None:
    base_speed = rows[0][3] / rows[0][4]
    load = os.getloadavg()
    print(f"model {args.model} ({path}), {args.examples} questions, greedy, max_new_tokens {args.max_new_tokens}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load[0]:.2f} {load[1]:.2f}\n")
    header = ["method", "dtype", "batch", "generated tokens", "seconds", "tok/s", "speed-up", "token F1", "ROUGE-L",
              "same answer as baseline"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|---|---|" + "---:|" * (len(header) - 2))
    for name, dtype, batch, tokens, seconds, scores, agree in rows:
        speed = tokens / seconds
        cells = [name, str(dtype).removeprefix("torch."), batch, tokens, f"{seconds:.1f}", f"{speed:.1f}",
                 f"{speed / base_speed:.1f}x", f"{scores['token_f1']:.3f}", f"{scores['rouge_l']:.3f}",
                 f"{agree:.0%}"]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
