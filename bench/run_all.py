"""Every performance figure of tunesmith against its baseline, in one run, as one table.

  python bench/run_all.py                # or: make bench   (about 25 minutes on a 2-core CPU)
  python bench/run_all.py --short-rows   # and the short-row chat figures (about 50 minutes more)

Runs, one after another on this machine (nothing else should run meanwhile: two torch
processes on a few cores slow each other down many times over):
  1. bench/matmul_peak.py: the bf16 matmul peak, the denominator of MFU;
  2. bench/bench_train.py, LoRA: tunesmith, TRL default, TRL best; then full: tunesmith, TRL default;
     each also scores the trained weights on held-out rows (same tokens trained on every side);
  3. bench/bench_generate.py: batched generation against `model.generate` one example at a time;
  4. `tunesmith quickstart` end to end into a temporary run directory (the embedded model's
     one-time conversion is cached beforehand, as it is after a user's first run);
  5. with --short-rows only: bench/bench_short_rows.py on short chat rows (a FAQ-like set in the
     model's chat template): 40 steps beside TRL's defaults, tunesmith's whole default training run
     (peak memory over the whole run, and its estimate), and the whole `tunesmith run` on 1,400 rows.
Then prints the table of figures, targets, TRL's number, ours and the ratio, and the machine,
and saves it to bench/results/summary.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_train
import torch

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def machine() -> str:
    cpu = platform.processor() or "cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    versions = f"torch {torch.__version__}, Python {platform.python_version()}"
    return f"{cpu}, {torch.get_num_threads()} threads{gpu}; {versions}"


def generation() -> dict:
    subprocess.run([sys.executable, str(HERE / "bench_generate.py"), "--skip-quality"], check=True,
                   capture_output=True, text=True)
    rows = json.loads((RESULTS / "generate.json").read_text())
    return {"one_at_a_time": rows[0]["tokens_per_s"], "batched": rows[1]["tokens_per_s"]}


def quickstart() -> float:
    from tunesmith.models import resolve_model

    resolve_model("smollm2-135m-instruct")  # the one-time GGUF conversion, cached as after a first run
    run_dir = Path(tempfile.mkdtemp(prefix="bench_quickstart_")) / "run"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tunesmith", "quickstart", "--set", f"run_dir={run_dir}"], check=True,
                   capture_output=True, text=True, cwd=HERE.parent)
    return time.perf_counter() - started


def side(summary: dict, name: str) -> dict:
    return next(s for s in summary["sides"] if s["side"] == name)


def speed(a: dict, b: dict, target: float, name: str) -> tuple:
    theirs, mine = b["trained_tokens_per_s"], a["trained_tokens_per_s"]
    return (name, f">= {target}x", f"{theirs:.0f} tok/s", f"{mine:.0f} tok/s", f"{mine / theirs:.2f}x",
            mine / theirs >= target)


def memory(a: dict, b: dict, name: str) -> tuple:
    ratio = a["peak_rss_gb"] / b["peak_rss_gb"]
    return (name, "<= 1x", f"{b['peak_rss_gb']:.2f} GB", f"{a['peak_rss_gb']:.2f} GB", f"{ratio:.2f}x", ratio <= 1)


def figures(peak: float, lora: dict, full: dict, gen: dict, quick_s: float) -> list[tuple]:
    """(figure, target, TRL, tunesmith, ratio, met) rows."""
    ours, default, best = side(lora, "tunesmith"), side(lora, "trl"), side(lora, "trl-best")
    full_ours, full_default = side(full, "tunesmith"), side(full, "trl")

    def quality(a: dict, b: dict, base: float, name: str) -> tuple:
        off = a["heldout_loss"] / b["heldout_loss"] - 1
        return (name, "within 1%", f"{b['heldout_loss']:.4f}", f"{a['heldout_loss']:.4f}",
                f"{off:+.2%} (untrained {base:.4f})", abs(off) <= 0.01)

    ratio_gen = gen["batched"] / gen["one_at_a_time"]
    return [
        speed(ours, default, 10, "LoRA trained tok/s vs TRL default"),
        speed(ours, best, 6, "LoRA trained tok/s vs TRL best (bf16, padding-free, no GC)"),
        speed(full_ours, full_default, 6, "full fine-tuning tok/s vs TRL default full"),
        memory(ours, default, "LoRA peak RSS vs TRL default"),
        memory(full_ours, full_default, "full peak RSS vs TRL default full"),
        (f"LoRA MFU (bf16 peak {peak:.0f} GFLOP/s)", ">= 30%", f"{default['mfu']:.1%}", f"{ours['mfu']:.1%}",
         f"{ours['mfu'] / default['mfu']:.2f}x", ours["mfu"] >= 0.30),
        ("full MFU", ">= 30%", f"{full_default['mfu']:.1%}", f"{full_ours['mfu']:.1%}",
         f"{full_ours['mfu'] / full_default['mfu']:.2f}x", full_ours["mfu"] >= 0.30),
        quality(ours, default, lora["base_heldout_loss"], "LoRA held-out loss, same tokens, vs TRL default"),
        quality(full_ours, full_default, full["base_heldout_loss"], "full held-out loss, same tokens, vs TRL default"),
        ("`tunesmith quickstart` wall time", "<= 4 min", "-", f"{quick_s / 60:.1f} min", "-", quick_s <= 240),
        ("batched generation vs one at a time", ">= 5x", f"{gen['one_at_a_time']:.1f} tok/s",
         f"{gen['batched']:.1f} tok/s", f"{ratio_gen:.1f}x", ratio_gen >= 5),
    ]


def short_rows() -> list[tuple]:
    """bench_short_rows.py: 40 steps beside TRL, then tunesmith's whole default training run (compared with
    that TRL run's steady state) and the whole `tunesmith run`; their rows against the targets."""
    import bench_short_rows

    for mode in (["--steps", "40"], ["--full-run", "--sides", "tunesmith"], ["--whole-run"]):
        subprocess.run([sys.executable, str(HERE / "bench_short_rows.py"), *mode], check=True)
    steps, full, whole = (json.loads((RESULTS / f"short-rows-{name}.json").read_text())
                          for name in ("steps", "full-run", "whole-run"))  # fmt: skip
    ours, default = side(steps, "tunesmith"), side(steps, "trl")
    return [
        speed(ours, default, 8, "short chat rows, 40 steps: tok/s vs TRL default"),
        memory(ours, default, "short chat rows, 40 steps: peak RSS vs TRL default"),
        *bench_short_rows.full_run_figures(full["tunesmith"], default),
        ("short chat rows: whole `tunesmith run`, 1,400 rows", "<= 15 min", "-", f"{whole['wall_s'] / 60:.1f} min",
         "-", whole["wall_s"] <= 900),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short-rows", action="store_true",
                        help="also bench/bench_short_rows.py's three modes (about 50 minutes more on 2 cores)")
    args = parser.parse_args()
    started = time.perf_counter()
    peak = bench_train.matmul_peak()
    print(f"bf16 matmul peak: {peak:.0f} GFLOP/s", flush=True)
    data = bench_train.SHARED / "data/gsm8k/train.jsonl"
    lora = bench_train.bench("lora", ["tunesmith", "trl", "trl-best"], data, steps=23, warmup=3, heldout=64, peak=peak)
    print(bench_train.table(lora), flush=True)
    full = bench_train.bench("full", ["tunesmith", "trl"], data, steps=23, warmup=3, heldout=64, peak=peak)
    print(bench_train.table(full), flush=True)
    gen = generation()
    print(f"generation: {gen}", flush=True)
    quick_s = quickstart()
    print(f"quickstart: {quick_s:.0f} s", flush=True)
    rows = figures(peak, lora, full, gen, quick_s) + (short_rows() if args.short_rows else [])

    lines = [f"machine: {machine()}", f"load: {lora['load_before']} (before) / {bench_train.uptime()} (after)",
             f"gsm8k train rows, SmolLM2-135M-Instruct, batch 8, max length 512, LoRA r=16 on all linear layers; "
             f"whole benchmark {(time.perf_counter() - started) / 60:.0f} min", "",
             *bench_train.figures_table(rows)]
    text = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "summary.md").write_text(text + "\n")
    print("\n" + text)


if __name__ == "__main__":
    main()
