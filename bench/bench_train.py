"""Training throughput and quality: tunesmith's loop against TRL's SFTTrainer, side by side in one run.

  python bench/bench_train.py                                   # LoRA: tunesmith, TRL default, TRL best
  python bench/bench_train.py --mode full --sides tunesmith,trl
  python bench/bench_train.py --mode full --sides tunesmith-fp32-autocast,tunesmith-bf16-master,trl
  python bench/bench_train.py --steps 23 --warmup 3 --data ../shared/data/gsm8k/train.jsonl
  python bench/bench_train.py --sides tunesmith --lora-dropout 0.05   # tunesmith with LoRA dropout on

Every side trains the same model folder (the embedded SmolLM2-135M-Instruct, resolved to its
safetensors folder) on the same rows, batch 8, max length 512, LoRA r=16 alpha=32 on all linear
layers with dropout 0 (peft's default, which TRL uses), question and answer as plain text with EOS,
as ../shared/bench/trl_baseline.py does. The training rows are the first steps x 8 of --data, so
every side sees each row exactly once and trains on the same tokens; the next --heldout rows are
the held-out set. tunesmith uses TRL's default optimisation settings (learning rate 2e-5, linear
decay, no warm-up, AdamW, clipping at 1.0) so that only speed differs. Each side runs in its own
process, so memory figures do not mix:
- tunesmith: `tunesmith.train.train(config)` (its prep runs first and is not timed), with its layers
  compiled (--compile on, the default here): `train.compile: auto` compiles when the run is long
  enough to pay the compile time back (a few hundred steps at this size; the quickstart does), and
  this benchmark's few steps measure that steady state. The compile time falls in the warm-up
  steps and is reported as compile_s (first step minus the median step);
  A side named tunesmith-<value> sets train.full_weights to <value> (bf16-master or fp32-autocast), so
  full fine-tuning's two ways of holding the weights run side by side; plain tunesmith keeps auto;
- trl: trl_baseline.py with TRL's defaults (fp32, gradient checkpointing);
- trl-best: trl_baseline.py --bf16 --padding-free --no-gradient-checkpointing (TRL's best on a CPU).
Reported per side: trained tokens/s (tokens that are not padding, through forward and backward,
per second of optimizer steps after the warm-up steps), median step time, peak RSS, MFU (model
FLOPs per token x tokens/s over the bf16 matmul peak of bench/matmul_peak.py) and, for tunesmith
and trl, the held-out loss after training (bench/heldout_loss.py scores both the same way).
The machine's load (`uptime`) before and after is printed and saved with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
SHARED = Path(os.environ.get("TUNESMITH_SHARED", HERE.resolve().parents[1] / "shared"))  # ../shared beside the repo
TRL_BASELINE = SHARED / "bench" / "trl_baseline.py"
RESULTS = HERE / "results"
TRL_BEST = ["--bf16", "--padding-free", "--no-gradient-checkpointing"]
BATCH = 8
SCORED = ("tunesmith", "trl")  # sides whose trained weights get the held-out loss (tunesmith-<...> too)
FULL_WEIGHTS = ("auto", "bf16-master", "fp32-autocast")  # tunesmith-<value>: its train.full_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED / "data/gsm8k/train.jsonl"), help="JSONL of question/answer")
    parser.add_argument("--mode", default="lora", choices=["lora", "full"])
    parser.add_argument("--steps", type=int, default=23, help="optimizer steps in all, warm-up included")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the figures")
    parser.add_argument("--heldout", type=int, default=64, help="held-out rows for the eval loss")
    parser.add_argument("--sides", default="tunesmith,trl,trl-best")
    parser.add_argument("--compile", default="on", choices=["on", "off", "auto"], help="tunesmith's train.compile")
    parser.add_argument("--lora-dropout", type=float, default=0.0,
                        help="tunesmith's LoRA dropout (TRL's side keeps peft's default, 0)")
    parser.add_argument("--full-weights", default="auto", choices=FULL_WEIGHTS, help=argparse.SUPPRESS)  # worker's
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one tunesmith side here
    args = parser.parse_args()
    if args.heldout < 1:
        parser.error("--heldout must be at least 1 (tunesmith's run uses it as its test split)")
    if args.worker:
        print(json.dumps(tunesmith_side(args, Path(args.worker))))
        return
    summary = bench(args.mode, args.sides.split(","), Path(args.data), args.steps, args.warmup, args.heldout,
                    compile_layers=args.compile, lora_dropout=args.lora_dropout)
    print(table(summary))
    print(f"\nsaved {RESULTS / results_name(args.mode, args.lora_dropout)}")


def bench(mode: str, sides: list[str], source: Path, steps: int, warmup: int, heldout: int,
          peak: float | None = None, compile_layers: str = "on", lora_dropout: float = 0.0) -> dict:
    """Run each side in turn; return (and save) the summary that `table` prints."""
    from tunesmith.models import resolve_model

    model = resolve_model("smollm2-135m-instruct").path
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    lines = head(source, steps * BATCH + heldout)
    data, held = work / "rows.jsonl", work / "heldout.jsonl"
    data.write_text("".join(lines[: steps * BATCH]), encoding="utf-8")
    held.write_text("".join(lines[steps * BATCH :]), encoding="utf-8")
    load_before = uptime()
    peak = peak or matmul_peak()
    args = argparse.Namespace(mode=mode, steps=steps, warmup=warmup, heldout=heldout, compile=compile_layers,
                              lora_dropout=lora_dropout)
    results = []
    for side in sides:
        started = time.perf_counter()
        result = run_side(side, args, model, data, held, work)
        result.update(side=side, wall_s=round(time.perf_counter() - started, 1))
        result["mfu"] = round(flops_per_token(mode) * result["trained_tokens_per_s"] / (peak * 1e9), 4)
        results.append(result)
        print(json.dumps(result), flush=True)
    summary = {"load_before": load_before, "load_after": uptime(), "bf16_matmul_peak_gflops": peak,
               "rows": steps * BATCH, "heldout_rows": heldout, "steps": steps, "warmup": warmup, "mode": mode,
               "tunesmith_lora_dropout": lora_dropout, "sides": results}
    scored = [(s, work / s["side"] / "trained") for s in results
              if s["side"] in SCORED or s["side"].startswith("tunesmith-")]
    if scored:
        losses = heldout_losses(model, held, [path for _, path in scored])
        summary["base_heldout_loss"] = losses["base"]
        for side, path in scored:
            side["heldout_loss"] = losses[str(path)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / results_name(mode, lora_dropout)).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run_side(side: str, args, model: Path, data: Path, held: Path, work: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if side.split("-", 1)[0] == "tunesmith":
        full_weights = side.removeprefix("tunesmith").removeprefix("-") or "auto"
        if full_weights not in FULL_WEIGHTS:
            raise SystemExit(f"unknown side {side!r}: tunesmith-<{'|'.join(FULL_WEIGHTS)}>")
        command = [sys.executable, __file__, "--worker", str(work / side), "--data", str(data),
                   "--mode", args.mode, "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--compile", args.compile, "--lora-dropout", str(args.lora_dropout), "--full-weights", full_weights]
        env.update(TUNESMITH_MODEL_DIR=str(model), TUNESMITH_HELDOUT=str(held))
    elif side in ("trl", "trl-best"):
        command = [sys.executable, str(HERE / "trl_saving.py"), str(TRL_BASELINE), "--model", str(model),
                   "--data", str(data), "--mode", args.mode, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--output-dir", str(work / side)]
        command += TRL_BEST if side == "trl-best" else []
        env["TUNESMITH_BENCH_SAVE"] = str(work / side / "trained")
    else:
        raise SystemExit(f"unknown side {side!r}: use tunesmith, tunesmith-<full weights>, trl, trl-best")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def results_name(mode: str, lora_dropout: float) -> str:
    return f"train-{mode}.json" if not lora_dropout else f"train-{mode}-dropout{lora_dropout:g}.json"


def tunesmith_side(args, run_dir: Path) -> dict:
    """One tunesmith run in this process, with TRL's default optimisation settings; figures from
    train_log.jsonl (one record per step). The trained weights are linked as run_dir/trained."""
    from tunesmith.config import validate_config
    from tunesmith.train import train

    config = validate_config({
        "model": os.environ["TUNESMITH_MODEL_DIR"], "run_dir": str(run_dir),
        "data": {"path": args.data, "test_path": os.environ["TUNESMITH_HELDOUT"], "template": "none",
                 "max_length": 512},
        "train": {"method": args.mode, "max_steps": args.steps, "batch_size": BATCH, "log_every": 1,
                  "save_every": args.steps, "learning_rate": 2e-5, "lr_scheduler": "linear", "warmup_ratio": 0.0,
                  "compile": {"on": True, "off": False}.get(args.compile, "auto"), "full_weights": args.full_weights,
                  "lora": {"r": 16, "alpha": 32, "dropout": args.lora_dropout, "target_modules": "all-linear"}},
    })
    result = train(config, progress=False)
    (run_dir / "trained").symlink_to(run_dir / ("adapter" if args.mode == "lora" else "model"))
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    tokens = [b["tokens_seen"] - a["tokens_seen"] for a, b in zip([{"tokens_seen": 0}, *steps], steps, strict=False)]
    seconds = [n / r["tokens_per_s"] for n, r in zip(tokens, steps, strict=True)]
    timed = list(zip(tokens, seconds, strict=True))[args.warmup:]
    info = json.loads((run_dir / "train_info.json").read_text())
    return {
        "tool": "tunesmith", "mode": args.mode, "precision": info["precision"], "attention": info["attention"],
        "trainable_params": result.estimate["estimated"]["trainable_params"], "steps_measured": len(timed),
        "step_time_median_s": sorted(s for _, s in timed)[len(timed) // 2],
        "trained_tokens_per_s": sum(n for n, _ in timed) / sum(s for _, s in timed),
        "compiled": info["estimate"]["compiled"],
        "compile_s": round(seconds[0] - sorted(seconds)[len(seconds) // 2], 1),
        "tokens_trained": steps[-1]["tokens_seen"],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "final_loss": result.final_loss, "estimate": result.estimate,
    }


def heldout_losses(model: Path, held: Path, trained: list[Path]) -> dict[str, float]:
    command = [sys.executable, str(HERE / "heldout_loss.py"), "--model", str(model), "--data", str(held), "--trained",
               "base", *map(str, trained)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise SystemExit(f"held-out loss failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def head(source: Path, rows: int) -> list[str]:
    with source.open(encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(rows), handle, strict=False)]
    if len(lines) < rows:
        raise SystemExit(f"{source} has {len(lines)} rows; this run needs {rows}")
    return lines


def flops_per_token(mode: str) -> float:
    """PERF_NOTES' model FLOPs per trained token for SmolLM2-135M (N = 134.5 M), attention included."""
    return 819e6 if mode == "full" else 579e6


def matmul_peak() -> float:
    done = subprocess.run([sys.executable, str(HERE / "matmul_peak.py")], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["bf16_gflops"]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def table(summary: dict) -> str:
    sides = summary["sides"]
    base = next((s["trained_tokens_per_s"] for s in sides if s["side"] == "trl"), None)
    lines = [f"{summary['mode']}, {summary['rows']} rows once ({summary['steps']} steps, {summary['warmup']} warm-up), "
             f"bf16 matmul peak {summary['bf16_matmul_peak_gflops']:.0f} GFLOP/s, "
             f"tunesmith's LoRA dropout {summary.get('tunesmith_lora_dropout', 0.0):g}",
             f"load before: {summary['load_before']}", f"load after:  {summary['load_after']}", "",
             "| side | trained tok/s | vs TRL default | median step (s) | peak RSS (GB) | MFU | held-out loss |",
             "|---|---|---|---|---|---|---|"]
    for s in sides:
        ratio = f"{s['trained_tokens_per_s'] / base:.2f}x" if base else "-"
        loss = f"{s['heldout_loss']:.4f}" if "heldout_loss" in s else "-"
        lines.append(f"| {s['side']} | {s['trained_tokens_per_s']:.0f} | {ratio} | {s['step_time_median_s']:.2f} | "
                     f"{s['peak_rss_gb']:.2f} | {s['mfu']:.1%} | {loss} |")
    if "base_heldout_loss" in summary:
        lines.append(f"\nheld-out loss before training: {summary['base_heldout_loss']:.4f} "
                     f"({summary['heldout_rows']} rows)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
