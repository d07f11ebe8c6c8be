"""GPU readiness: tunesmith's LoRA training beside TRL's SFTTrainer (and TRL with Liger's kernels) on one GPU.

  python bench/bench_gpu.py                                          # Qwen2.5-0.5B-Instruct, the bundled FAQ rows
  python bench/bench_gpu.py --model meta-llama/Llama-3.1-8B-Instruct --data rows.jsonl --steps 43
  python bench/bench_gpu.py --model ./tiny --device cpu --steps 3 --warmup 1 --heldout 4 --compile off  # smoke

Every side trains LoRA (r=16, alpha=32, all linear layers, dropout 0) on the same rows: the first
steps x batch-size rows of --data, each once, max length 512; the next --heldout rows are the
held-out set. --data is a JSONL of question/answer rows; its default, examples/lumen_faq.jsonl (321
rows, in the repo), holds enough for the default steps, batch and held-out rows, and a larger run
needs a larger file. Each side runs in its own process, so peak GPU memory
(torch.cuda.max_memory_allocated and max_memory_reserved of the whole process: loading, training,
saving) does not mix between sides (bench/bench_train.py's machinery):
- tunesmith: `tunesmith.train` with what it picks on a GPU: bf16 with the frozen weights stored in
  bf16, SDPA attention, compiled layers (--compile), fused AdamW, the loss computed only at trained
  positions; with TRL's default optimisation settings (lr 2e-5, linear decay, no warm-up, clipping
  at 1.0) so that only speed differs;
- trl: ../shared/bench/trl_baseline.py, TRL's SFTTrainer as a user sets it up (its defaults: fp32,
  gradient checkpointing);
- trl-best: the same with --bf16 --padding-free --no-gradient-checkpointing;
- trl-liger: trl-best with use_liger_kernel=True, when liger_kernel is installed (skipped, and said
  so, when it is not).
Every side's trained adapter is then scored on the held-out rows by bench/heldout_loss.py (fp32,
on the GPU). Printed: trained tokens/s (tokens that are not padding, through forward and backward,
per second of optimizer steps after --warmup), median step time, peak GPU memory allocated and
reserved, peak RSS and held-out loss per side; saved as JSON to --out.

Needs a CUDA device and a CUDA build of torch: without one it stops with an error, unless
--device cpu is given, a smoke run of the whole script on the CPU (for a tiny model: its figures
say nothing about a GPU). The TRL sides need trl_baseline.py from the shared folder
($TUNESMITH_SHARED, default ../shared beside the repo); --sides tunesmith runs without it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

from bench_train import LIGER_SIDES, RESULTS, heldout_note, run_sides, score, side_rows, split_rows

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    args = parse_args()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch looks: the sides' processes stay on the CPU too
    else:
        require_cuda()
    sides = runnable(args.sides.split(","), args.device)
    model = local_model(args.model)
    summary = bench(args, sides, model)
    out = Path(args.out or RESULTS / f"gpu-{args.mode}-{model.name}.json")
    from tunesmith.runs import atomic_write_json

    atomic_write_json(out, summary)
    print(table(summary))
    print(f"\nsaved {out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="Qwen/Qwen2.5-0.5B-Instruct",
                        help="Hugging Face hub id or model folder (0.5B-8B fits one GPU with LoRA)")
    parser.add_argument("--data", default=str(REPO / "examples/lumen_faq.jsonl"),
                        help="JSONL of question/answer rows (default: the repo's bundled FAQ, 321 rows)")
    parser.add_argument("--mode", default="lora", choices=["lora", "full"])
    parser.add_argument("--steps", type=int, default=23, help="optimizer steps in all, warm-up included")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the figures")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per optimizer step, every side")
    parser.add_argument("--heldout", type=int, default=64, help="held-out rows for the eval loss")
    parser.add_argument("--sides", default="tunesmith,trl,trl-best,trl-liger")
    parser.add_argument("--compile", default="on", choices=["on", "off", "auto"], help="tunesmith's train.compile")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                        help="cpu: a smoke run of the whole script without a GPU")
    parser.add_argument("--out", help="where the JSON summary goes (default: bench/results/gpu-MODE-MODEL.json)")
    args = parser.parse_args()
    if args.heldout < 1 or args.warmup >= args.steps:
        parser.error("--heldout must be at least 1 and --warmup below --steps (some steps must be timed)")
    return args


def require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(
            f"bench_gpu.py: no CUDA device found (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda or 'none'}). Run it on a machine with an NVIDIA GPU and a CUDA build of torch, "
            "or pass --device cpu for a smoke run on the CPU"
        )


def runnable(sides: list[str], device: str) -> list[str]:
    """The sides that can run here; a TRL or Liger side is skipped, with the reason printed, where it cannot."""
    kept = []
    for side in sides:
        if side.startswith("trl") and importlib.util.find_spec("trl") is None:
            print(f"{side}: skipped: trl is not installed (pip install -e '.[bench]')")
        elif side in LIGER_SIDES and importlib.util.find_spec("liger_kernel") is None:
            print(f"{side}: skipped: liger_kernel is not installed (pip install liger-kernel)")
        elif side in LIGER_SIDES and device == "cpu":
            print(f"{side}: skipped: Liger's kernels run on a GPU only")
        else:
            kept.append(side)
    return kept


def local_model(spec: str) -> Path:
    """The model as a local folder (a hub id is downloaded once), so every side loads the same files."""
    from tunesmith.errors import TunesmithError
    from tunesmith.models import resolve_model

    try:
        return resolve_model(spec).path
    except TunesmithError as err:
        raise SystemExit(f"--model: {err}") from None


def bench(args: argparse.Namespace, sides: list[str], model: Path) -> dict:
    """Train every side in its own process, score each on the held-out rows; the summary `table` prints."""
    import torch

    work = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    rows = args.steps * args.batch_size
    data, held = split_rows(Path(args.data), rows, args.heldout, work)
    run = argparse.Namespace(mode=args.mode, steps=args.steps, warmup=args.warmup, batch_size=args.batch_size,
                             compile=args.compile, lora_dropout=0.0)
    results = run_sides(sides, run, model, data, held, work)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "none (CPU smoke run)"
    summary = {"model": args.model, "mode": args.mode, "gpu": gpu, "torch": torch.__version__,
               "flash_attn_installed": importlib.util.find_spec("flash_attn") is not None,
               "rows": rows, "heldout_rows": args.heldout, "steps": args.steps, "warmup": args.warmup,
               "batch_size": args.batch_size, "sides": results}
    summary.update(score(model, held, results, work))
    return summary


def settings(side: dict) -> str:
    """What a side ran with, in a few words."""
    if side["tool"] == "tunesmith":
        precision = side["precision"]  # train_info.json's: compute dtype, frozen weights' dtype, autocast
        return (f"{precision['compute']} (frozen {precision['frozen_weights']}), {side['attention']}"
                + (", compiled" if side["compiled"] else ""))
    flags = [("bf16" if side["bf16"] else "fp32"), side["padding_free"] and "padding-free",
             side["gradient_checkpointing"] and "grad. checkpointing", side.get("liger") and "Liger"]
    return ", ".join(flag for flag in flags if flag)


def gigabytes(key: str):
    return lambda side: f"{side[key]:.2f}" if key in side else "-"


def table(summary: dict) -> str:
    lines = [f"{summary['mode']} on {summary['model']}, GPU {summary['gpu']}, torch {summary['torch']}: "
             f"{summary['rows']} rows once ({summary['steps']} steps of {summary['batch_size']}, "
             f"{summary['warmup']} warm-up)",
             f"flash_attn {'installed' if summary['flash_attn_installed'] else 'not installed'}; "
             "tunesmith trains with SDPA either way", ""]
    lines += side_rows(summary["sides"], [("settings", settings),
                                          ("peak GPU allocated (GB)", gigabytes("peak_gpu_allocated_gb")),
                                          ("peak GPU reserved (GB)", gigabytes("peak_gpu_reserved_gb")),
                                          ("peak RSS (GB)", gigabytes("peak_rss_gb"))])
    return "\n".join(lines + heldout_note(summary))


if __name__ == "__main__":
    main()
