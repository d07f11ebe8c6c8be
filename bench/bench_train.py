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
FLOPs per token x tokens/s over the bf16 matmul peak of bench/matmul_peak.py; a shared prefix that
tunesmith runs once per batch (train.share_prefix) still counts once per row, so on chat rows it is the
work delivered rather than the hardware's utilisation) and, for tunesmith
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
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
SHARED = Path(os.environ.get("TUNESMITH_SHARED", HERE.resolve().parents[1] / "shared"))  # ../shared beside the repo
TRL_BASELINE = SHARED / "bench" / "trl_baseline.py"
RESULTS = HERE / "results"
TRL_BEST = ["--bf16", "--padding-free", "--no-gradient-checkpointing"]
TRL_SIDES = {"trl": [], "trl-best": TRL_BEST, "trl-liger": TRL_BEST}  # trl_baseline.py's flags per side
LIGER_SIDES = {"trl-liger"}  # TRL with use_liger_kernel=True (trl_saving.py turns it on)
BATCH = 8
SCORED = ("tunesmith", "trl")  # sides whose trained weights get the held-out loss (tunesmith-<...> too)
FULL_WEIGHTS = ("auto", "bf16-master", "fp32-autocast")  # tunesmith-<value>: its train.full_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED / "data/gsm8k/train.jsonl"), help="JSONL of question/answer")
    parser.add_argument("--mode", default="lora", choices=["lora", "full"])
    parser.add_argument("--steps", type=int, default=23, help="optimizer steps in all, warm-up included")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the figures")
    parser.add_argument("--batch-size", type=int, default=BATCH, help=argparse.SUPPRESS)  # the worker's (bench_gpu.py)
    parser.add_argument("--heldout", type=int, default=64, help="held-out rows for the eval loss")
    parser.add_argument("--sides", default="tunesmith,trl,trl-best")
    parser.add_argument("--compile", default="on", choices=["on", "off", "auto"], help="tunesmith's train.compile")
    parser.add_argument("--lora-dropout", type=float, default=0.0,
                        help="tunesmith's LoRA dropout (TRL's side keeps peft's default, 0)")
    parser.add_argument("--full-weights", default="auto", choices=FULL_WEIGHTS, help=argparse.SUPPRESS)  # worker's
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one tunesmith side here
    parser.add_argument("--tunesmith-config", help=argparse.SUPPRESS)  # internal: the worker's settings (JSON)
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
          peak: float | None = None, compile_layers: str = "on", lora_dropout: float = 0.0,
          settings: dict | None = None, chat: bool = False, name: str | None = None) -> dict:
    """Run each side in turn; return (and save, as `name`) the summary that `table` prints.

    `settings`: tunesmith's config in place of the TRL-like one (its data path and test path are
    filled in here); `chat`: TRL trains on the rows as conversational prompt/completion, rendered
    with the model's chat template, and the held-out loss is scored in that template too."""
    from tunesmith.models import resolve_model
    from tunesmith.runs import atomic_write_json

    model = resolve_model("smollm2-135m-instruct").path
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    data, held = split_rows(source, steps * BATCH, heldout, work)
    config = trl_chat = None
    if settings is not None:
        config = work / "tunesmith.json"
        atomic_write_json(config, {**settings, "data": {**settings.get("data", {}), "path": str(data),
                                                        "test_path": str(held)}})
    if chat:
        trl_chat = work / "rows_chat.jsonl"
        rows = chat_rows(json.loads(line) for line in data.read_text(encoding="utf-8").splitlines())
        trl_chat.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    load_before = uptime()
    peak = peak or matmul_peak()
    args = argparse.Namespace(mode=mode, steps=steps, warmup=warmup, batch_size=BATCH, compile=compile_layers,
                              lora_dropout=lora_dropout)
    results = run_sides(sides, args, model, data, held, work, tunesmith_config=config, trl_chat=trl_chat)
    for result in results:
        result["mfu"] = round(flops_per_token(mode) * result["trained_tokens_per_s"] / (peak * 1e9), 4)
    summary = {"load_before": load_before, "load_after": uptime(), "bf16_matmul_peak_gflops": peak,
               "rows": steps * BATCH, "heldout_rows": heldout, "steps": steps, "warmup": warmup, "mode": mode,
               "tunesmith_lora_dropout": lora_dropout, "tunesmith_settings": settings, "chat_template": chat,
               "sides": results}
    scored = [s for s in results if s["side"] in SCORED or s["side"].startswith("tunesmith-")]
    summary.update(score(model, held, scored, work, chat_template=chat))
    atomic_write_json(RESULTS / (name or results_name(mode, lora_dropout)), summary)
    return summary


def split_rows(source: Path, train_rows: int, heldout: int, work: Path) -> tuple[Path, Path]:
    """The first train_rows rows of source (each trained once), then the next heldout rows, as two files."""
    lines = head(source, train_rows + heldout)
    data, held = work / "rows.jsonl", work / "heldout.jsonl"
    data.write_text("".join(lines[:train_rows]), encoding="utf-8")
    held.write_text("".join(lines[train_rows:]), encoding="utf-8")
    return data, held


def run_sides(sides: list[str], args, model: Path, data: Path, held: Path, work: Path, **options) -> list[dict]:
    """Each side in its own process, one after the other (`options`: run_side's); one result per side,
    printed as it comes."""
    results = []
    for side in sides:
        started = time.perf_counter()
        result = run_side(side, args, model, data, held, work, **options)
        result.update(side=side, wall_s=round(time.perf_counter() - started, 1))
        results.append(result)
        print(brief(result), flush=True)
    return results


def score(model: Path, held: Path, sides: list[dict], work: Path, chat_template: bool = False) -> dict:
    """Add each side's held-out loss to it; return the untrained model's as base_heldout_loss (none: {})."""
    if not sides:
        return {}
    trained = [work / side["side"] / "trained" for side in sides]
    losses = heldout_losses(model, held, trained, chat_template)
    for side, path in zip(sides, trained, strict=True):
        side["heldout_loss"] = losses[str(path)]
    return {"base_heldout_loss": losses["base"]}


def brief(result: dict) -> str:
    """A side's result as one JSON line, without its RSS timeline."""
    return json.dumps({k: v for k, v in result.items() if k != "rss_timeline_gb"})


def chat_rows(rows) -> list[dict]:
    """{question, answer} rows as TRL's conversational prompt/completion (it renders them with the chat template)."""
    return [{"prompt": [{"role": "user", "content": r["question"]}],
             "completion": [{"role": "assistant", "content": r["answer"]}]} for r in rows]  # fmt: skip


def run_side(side: str, args, model: Path, data: Path, held: Path | None, work: Path, *,
             tunesmith_config: Path | None = None, trl_chat: Path | None = None) -> dict:
    """One side in its own process. `tunesmith_config`: a JSON config (model and run_dir left out) that
    replaces the TRL-like settings; `trl_chat`: conversational prompt/completion rows (lists of messages)
    that TRL renders with the model's chat template, instead of `data` as plain text."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if side.split("-", 1)[0] == "tunesmith":
        full_weights = side.removeprefix("tunesmith").removeprefix("-") or "auto"
        if full_weights not in FULL_WEIGHTS:
            raise SystemExit(f"unknown side {side!r}: tunesmith-<{'|'.join(FULL_WEIGHTS)}>")
        command = [sys.executable, __file__, "--worker", str(work / side), "--data", str(data),
                   "--mode", args.mode, "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--batch-size", str(args.batch_size), "--compile", args.compile,
                   "--lora-dropout", str(args.lora_dropout), "--full-weights", full_weights]
        command += ["--tunesmith-config", str(tunesmith_config)] if tunesmith_config else []
        env.update(TUNESMITH_MODEL_DIR=str(model), **({"TUNESMITH_HELDOUT": str(held)} if held else {}))
    elif side in TRL_SIDES:
        if not TRL_BASELINE.is_file():
            raise SystemExit(f"{side}: {TRL_BASELINE} is missing; set TUNESMITH_SHARED to the folder that holds "
                             "bench/trl_baseline.py, or leave the TRL sides out (--sides tunesmith)")
        command = [sys.executable, str(HERE / "trl_saving.py"), str(TRL_BASELINE), "--model", str(model),
                   "--data", str(trl_chat or data), "--mode", args.mode, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
                   "--output-dir", str(work / side), *TRL_SIDES[side]]
        command += ["--prompt-field", "prompt", "--completion-field", "completion"] if trl_chat else []
        env["TUNESMITH_BENCH_SAVE"] = str(work / side / "trained")
        if side in LIGER_SIDES:
            env["TUNESMITH_BENCH_LIGER"] = "1"
    else:
        raise SystemExit(f"unknown side {side!r}: use tunesmith, tunesmith-<full weights>, {', '.join(TRL_SIDES)}")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def results_name(mode: str, lora_dropout: float) -> str:
    return f"train-{mode}.json" if not lora_dropout else f"train-{mode}-dropout{lora_dropout:g}.json"


def tunesmith_side(args, run_dir: Path) -> dict:
    """One tunesmith run in this process, with TRL's default optimisation settings (or the config in
    --tunesmith-config); figures from train_log.jsonl (one record per step), RSS sampled every 0.5 s
    over the whole run. The trained weights are linked as run_dir/trained."""
    from peak_rss import PeakRss

    from tunesmith.config import validate_config
    from tunesmith.train import train

    if args.tunesmith_config:
        settings = json.loads(Path(args.tunesmith_config).read_text(encoding="utf-8"))
    else:
        settings = trl_like_settings(args)
    config = validate_config({**settings, "model": os.environ["TUNESMITH_MODEL_DIR"], "run_dir": str(run_dir)})
    with PeakRss(every=0.5, timeline=True) as rss:
        result = train(config, progress=False)
    (run_dir / "trained").symlink_to(run_dir / ("adapter" if config.train.method == "lora" else "model"))
    info = json.loads((run_dir / "train_info.json").read_text())
    return {
        "tool": "tunesmith", "mode": config.train.method, "precision": info["precision"],
        "attention": info["attention"], "trainable_params": result.estimate["estimated"]["trainable_params"],
        **log_figures(run_dir, args.warmup), "compiled": info["estimate"]["compiled"],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "peak_rss_sampled_gb": rss.peak / 1024**3, **gpu_memory(), "rss_timeline_gb": timeline(rss.samples),
        "final_loss": result.final_loss, "estimate": result.estimate,
    }


def log_figures(run_dir: Path, warmup: int) -> dict:
    """Speed along a run from its train_log.jsonl: the figures after `warmup` steps, and the whole run's.

    Each record covers the steps since the one before (train.log_every); the records whose steps all
    come after the warm-up are the timed ones (all of them, if none is)."""
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    starts = [0] + [r["step"] for r in steps[:-1]]
    tokens = [b["tokens_seen"] - a["tokens_seen"] for a, b in zip([{"tokens_seen": 0}, *steps], steps, strict=False)]
    seconds = [n / r["tokens_per_s"] for n, r in zip(tokens, steps, strict=True)]
    windows = [(start, r["step"] - start, n, s) for start, r, n, s in zip(starts, steps, tokens, seconds, strict=True)]
    timed = [w[1:] for w in windows if w[0] >= warmup] or [w[1:] for w in windows]  # (steps, tokens, seconds)
    rates = sorted(n / s for _, n, s in timed)
    return {
        "steps": steps[-1]["step"], "steps_measured": sum(k for k, _, _ in timed),
        "step_time_median_s": sorted(s / k for k, _, s in timed)[len(timed) // 2],
        "trained_tokens_per_s": sum(n for _, n, _ in timed) / sum(s for _, _, s in timed),
        "tokens_per_s_median": rates[len(rates) // 2], "tokens_per_s_range": [rates[0], rates[-1]],
        "tokens_per_s_whole_run": sum(tokens) / sum(seconds), "train_s": round(sum(seconds), 1),
        "compile_s": round(seconds[0] - sorted(seconds)[len(seconds) // 2], 1),
        "tokens_trained": steps[-1]["tokens_seen"],
    }


def trl_like_settings(args) -> dict:
    """tunesmith with TRL's default optimisation settings, on question + answer as plain text."""
    return {
        "data": {"path": args.data, "test_path": os.environ["TUNESMITH_HELDOUT"], "template": "none",
                 "max_length": 512},
        "train": {"method": args.mode, "max_steps": args.steps, "batch_size": args.batch_size, "log_every": 1,
                  "save_every": args.steps, "learning_rate": 2e-5, "lr_scheduler": "linear", "warmup_ratio": 0.0,
                  "compile": {"on": True, "off": False}.get(args.compile, "auto"), "full_weights": args.full_weights,
                  "lora": {"r": 16, "alpha": 32, "dropout": args.lora_dropout, "target_modules": "all-linear"}},
    }


def gpu_memory() -> dict:
    """This process's peak GPU memory, held by tensors and reserved by torch's caching allocator ({} on a CPU)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"peak_gpu_allocated_gb": torch.cuda.max_memory_allocated() / 1e9,
            "peak_gpu_reserved_gb": torch.cuda.max_memory_reserved() / 1e9}


def timeline(samples: list[tuple[float, int]], points: int = 120) -> list[tuple[float, float]]:
    """(seconds, GiB) samples thinned to about `points`, each the largest RSS of its stretch."""
    stretch = max(1, -(-len(samples) // points))
    return [(samples[i][0], round(max(r for _, r in samples[i : i + stretch]) / 1024**3, 3))
            for i in range(0, len(samples), stretch)]  # fmt: skip


def heldout_losses(model: Path, held: Path, trained: list[Path], chat_template: bool = False) -> dict[str, float]:
    command = [sys.executable, str(HERE / "heldout_loss.py"), "--model", str(model), "--data", str(held), "--trained",
               "base", *map(str, trained)]
    command += ["--chat-template"] if chat_template else []
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


def figures_table(rows: list[tuple]) -> list[str]:
    """Markdown lines of (figure, target, TRL, tunesmith, ratio, met) rows."""
    lines = ["| figure | target | TRL | tunesmith | ratio | met |", "|---|---|---|---|---|---|"]
    return lines + ["| " + " | ".join(map(str, row[:-1])) + f" | {'yes' if row[-1] else 'NO'} |" for row in rows]


def table(summary: dict) -> str:
    lines = [f"{summary['mode']}, {summary['rows']} rows once ({summary['steps']} steps, {summary['warmup']} warm-up), "
             f"bf16 matmul peak {summary['bf16_matmul_peak_gflops']:.0f} GFLOP/s, "
             f"tunesmith's LoRA dropout {summary.get('tunesmith_lora_dropout', 0.0):g}",
             f"load before: {summary['load_before']}", f"load after:  {summary['load_after']}", ""]
    lines += side_rows(summary["sides"], [("peak RSS (GB)", lambda s: f"{s['peak_rss_gb']:.2f}"),
                                          ("MFU", lambda s: f"{s['mfu']:.1%}")])
    return "\n".join(lines + heldout_note(summary))


def side_rows(sides: list[dict], figures: list[tuple[str, Callable[[dict], str]]]) -> list[str]:
    """A markdown table, one row per side: throughput (and its ratio to TRL's default), median step,
    the given `figures` (header, cell), and the held-out loss ("-" for a side not scored)."""
    base = next((s["trained_tokens_per_s"] for s in sides if s["side"] == "trl"), None)
    columns = [("side", lambda s: s["side"]),
               ("trained tok/s", lambda s: f"{s['trained_tokens_per_s']:.0f}"),
               ("vs TRL default", lambda s: f"{s['trained_tokens_per_s'] / base:.2f}x" if base else "-"),
               ("median step (s)", lambda s: f"{s['step_time_median_s']:.2f}"),
               *figures,
               ("held-out loss", lambda s: f"{s['heldout_loss']:.4f}" if "heldout_loss" in s else "-")]
    lines = ["| " + " | ".join(header for header, _ in columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(cell(s) for _, cell in columns) + " |" for s in sides]


def heldout_note(summary: dict) -> list[str]:
    if "base_heldout_loss" not in summary:
        return []
    return [f"\nheld-out loss before training: {summary['base_heldout_loss']:.4f} ({summary['heldout_rows']} rows)"]


if __name__ == "__main__":
    main()
