"""Short-row chat data over a whole run: what a FAQ or support-ticket user gets, beside TRL's defaults.

  python bench/bench_short_rows.py --steps 40     # 40 steps: tunesmith (its defaults) vs TRL default
  python bench/bench_short_rows.py --full-run     # tunesmith's whole default training run; TRL 40 steps
  python bench/bench_short_rows.py --whole-run    # `tunesmith run` on the 1,400-row file, time per phase
  # smoke tests (minutes): --steps 3 --warmup 1 --heldout 8
  #   --full-run --rows 40 --trl-steps 3 --warmup 1 --set train.epochs=1
  #   --whole-run --rows 40 --set train.epochs=1 --set eval.forgetting_size=5

The data is bench/faq_rows.py's FAQ-like set (1,400 short question/answer rows from ARC-Easy and
GSM8K), written at run time; its token lengths in the model's chat template are printed and saved.
Every tunesmith side runs as a user gets it: all settings at their defaults (the model's chat
template, batch 8, max length 512, LoRA r=16 on all linear layers, `train.compile: auto`), apart
from train_log.jsonl written at every step (`train.log_every: 1`) for the per-step figures; `--set`
changes a tunesmith setting (for smoke tests). TRL is ../shared/bench/trl_baseline.py with its
defaults (fp32, gradient checkpointing), given the rows as conversational prompt/completion, which
TRL renders with the same chat template. Each side runs in its own process (bench_train.run_side).
- --steps N: both sides train on the same N x 8 rows, once; the next --heldout rows are the test
  split and score both sides' weights (bench/heldout_loss.py --chat-template). Trained tok/s after
  --warmup steps, the ratio, peak RSS (and the rest of bench_train's table).
- --full-run: tunesmith's default training run on the whole file (it holds out 10% itself: 3 epochs
  over ~1,260 rows), its RSS sampled every 0.5 s over the whole run beside the process's max RSS,
  and the peak memory it estimated before the first step; tok/s median and range along the run
  (after --warmup steps) and over the whole run (compile included). TRL over a full run would take
  hours here, so the run is compared with TRL's steady state over --trl-steps steps in this run.
- --whole-run: `tunesmith run FILE` in a fresh process (prep, train, base / few-shot / tuned on the
  test split, check, report), its wall time per phase (timings.json) and in all, and its max RSS.
Results: bench/results/short-rows-{steps,full-run,whole-run}.json and .md. Nothing else should run
on the machine meanwhile; the load (`uptime`) before and after is saved with the results.
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

import bench_train
import faq_rows

RESULTS = bench_train.RESULTS
MODEL = "smollm2-135m-instruct"
ESTIMATE_WITHIN = 0.15  # the bound on |estimated peak memory / measured peak - 1|


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--steps", type=int, help="optimizer steps of both sides, warm-up included (default mode: 40)")
    mode.add_argument("--full-run", action="store_true", help="tunesmith's whole default training run")
    mode.add_argument("--whole-run", action="store_true", help="`tunesmith run` end to end, time per phase")
    parser.add_argument("--rows", type=int, default=faq_rows.ROWS, help="rows of the FAQ-like file")
    parser.add_argument("--heldout", type=int, default=140, help="--steps: held-out rows scored after training")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the steady-state figures")
    parser.add_argument("--trl-steps", type=int, default=40, help="--full-run: TRL's steps, for its steady state")
    parser.add_argument("--sides", default="tunesmith,trl", help="--steps and --full-run: sides to run")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a tunesmith setting, as `tunesmith --set` takes it (repeatable)")
    args = parser.parse_args()
    rows = faq_rows.build(rows=args.rows)
    work = Path(tempfile.mkdtemp(prefix="bench_short_rows_"))
    data = work / "faq.jsonl"
    faq_rows.write_jsonl(rows, data)
    stats = data_stats(rows)
    print(f"{len(rows)} FAQ-like rows in {data}; tokens per row in the chat template: {stats}", flush=True)
    if args.full_run:
        summary, text = full_run(args, data, work)
    elif args.whole_run:
        summary, text = whole_run(args, data, work)
    else:
        summary, text = steps_run(args, data)
    summary["data"] = stats
    text = f"{text}\n\nFAQ-like data: {stats['rows']} rows, tokens per row in the chat template: median " \
           f"{stats['median']:g}, p95 {stats['p95']}, max {stats['max']} (bench/faq_rows.py)"  # fmt: skip
    name = summary["name"]
    save(name, summary, text)
    print(f"\n{text}\n\nsaved {RESULTS / name}.json and .md")


def data_stats(rows: list[dict]) -> dict:
    from transformers import AutoTokenizer

    from tunesmith.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(MODEL).path)
    return faq_rows.length_stats(faq_rows.token_lengths(rows, tokenizer))


def user_settings(overrides: list[str], data: dict | None = None, **train: object) -> dict:
    """tunesmith's defaults as a user gets them, with per-step logging, `data`, `train` and `--set` on top."""
    from tunesmith.config import apply_overrides

    return apply_overrides({"data": data or {}, "train": {"log_every": 1, **train}}, overrides)


def steps_run(args, data: Path) -> tuple[dict, str]:
    steps = args.steps or 40
    settings = user_settings(args.overrides, max_steps=steps)
    method = settings["train"].get("method", "lora")
    summary = bench_train.bench(method, args.sides.split(","), data, steps, args.warmup, args.heldout,
                                settings=settings, chat=True, name="short-rows-steps.json")  # fmt: skip
    summary["name"] = "short-rows-steps"
    lines = [bench_train.table(summary), "", "| side | compiled | tok/s over all steps | peak RSS sampled (GiB) | "
             "estimated peak (GiB) |", "|---|---|---|---|---|"]
    for side in summary["sides"]:
        if side["side"] == "tunesmith":
            estimated = side["estimate"]["estimated"]["peak_memory_gb"] * 1e9 / 1024**3
            lines.append(f"| tunesmith | {side['compiled']} | {side['tokens_per_s_whole_run']:.0f} | "
                         f"{side['peak_rss_sampled_gb']:.2f} | {estimated:.2f} |")
    return summary, "\n".join(lines)


def full_run(args, data: Path, work: Path) -> tuple[dict, str]:
    """tunesmith's default run on the whole file; TRL's default over --trl-steps steps beside it."""
    from tunesmith.models import resolve_model
    from tunesmith.runs import atomic_write_json

    model = resolve_model(MODEL).path
    load_before = bench_train.uptime()
    sides, results, settings = args.sides.split(","), {}, None
    if "tunesmith" in sides:
        config = work / "tunesmith.json"
        settings = user_settings(args.overrides, data={"path": str(data)})
        atomic_write_json(config, settings)
        side_args = argparse.Namespace(mode="lora", steps=0, warmup=args.warmup, compile="auto", lora_dropout=0.0,
                                       batch_size=bench_train.BATCH)
        results["tunesmith"] = timed_side("tunesmith", side_args, model, data, work, tunesmith_config=config)
    if "trl" in sides:
        rows = [json.loads(line) for line in bench_train.head(data, args.trl_steps * bench_train.BATCH)]
        chat = work / "trl_chat.jsonl"
        faq_rows.write_jsonl(bench_train.chat_rows(rows), chat)
        side_args = argparse.Namespace(mode="lora", steps=args.trl_steps, warmup=args.warmup,
                                       batch_size=bench_train.BATCH)
        results["trl"] = timed_side("trl", side_args, model, data, work, trl_chat=chat)
    summary = {"name": "short-rows-full-run", "load_before": load_before, "load_after": bench_train.uptime(),
               "rows": args.rows, "tunesmith_settings": settings,
               "trl_steps": args.trl_steps, "warmup": args.warmup, **results}  # fmt: skip
    summary["figures"] = full_run_figures(results.get("tunesmith"), results.get("trl"))
    return summary, full_run_table(summary)


def timed_side(side: str, side_args, model: Path, data: Path, work: Path, **inputs) -> dict:
    started = time.perf_counter()
    result = bench_train.run_side(side, side_args, model, data, None, work, **inputs)
    result.update(side=side, wall_s=round(time.perf_counter() - started, 1))
    print(bench_train.brief(result), flush=True)
    return result


def full_run_figures(ours: dict | None, trl: dict | None) -> list[tuple]:
    """(figure, target, TRL, tunesmith, ratio, met) rows; met is None where a side is missing."""
    rows = []
    if ours:
        estimated = ours["estimate"]["estimated"]["peak_memory_gb"] * 1e9
        peak = max(ours["peak_rss_gb"], ours["peak_rss_sampled_gb"]) * 1024**3
        off, within = estimated / peak - 1, ESTIMATE_WITHIN
        rows.append(("estimated peak memory vs measured peak", f"within {within:.0%}", "-",
                     f"{estimated / 1024**3:.2f} GB est. / {peak / 1024**3:.2f} GB", f"{off:+.1%}", abs(off) <= within))
    if ours and trl:
        for name, ours_rate in (("tok/s over the whole run (compile included)", ours["tokens_per_s_whole_run"]),
                                ("tok/s, median step after warm-up", ours["tokens_per_s_median"])):
            ratio = ours_rate / trl["trained_tokens_per_s"]
            rows.append((f"{name} vs TRL default's {trl['steps_measured']}-step steady state", ">= 8x",
                         f"{trl['trained_tokens_per_s']:.0f}", f"{ours_rate:.0f}", f"{ratio:.2f}x", ratio >= 8))
        ratio = ours["peak_rss_gb"] / trl["peak_rss_gb"]
        rows.append(("peak RSS over the whole run vs TRL's (its steps)", "<= 1x", f"{trl['peak_rss_gb']:.2f} GB",
                     f"{ours['peak_rss_gb']:.2f} GB", f"{ratio:.2f}x", ratio <= 1))
    return rows  # fmt: skip


def full_run_table(summary: dict) -> str:
    ours = summary.get("tunesmith")
    lines = [f"load before: {summary['load_before']}", f"load after:  {summary['load_after']}", ""]
    if ours:
        low, high = ours["tokens_per_s_range"]
        peak_at = max(ours["rss_timeline_gb"], key=lambda point: point[1], default=(0, 0))
        lines += [f"tunesmith, default run: {ours['steps']} steps, {ours['tokens_trained']:,} tokens trained in "
                  f"{ours['train_s']:.0f} s of steps ({ours['wall_s']:.0f} s in all), compiled: {ours['compiled']}; "
                  f"tok/s median {ours['tokens_per_s_median']:.0f}, range {low:.0f}-{high:.0f} (after "
                  f"{summary['warmup']} steps), {ours['tokens_per_s_whole_run']:.0f} over the whole run; peak RSS "
                  f"{ours['peak_rss_gb']:.2f} GB (max RSS), {ours['peak_rss_sampled_gb']:.2f} GB sampled, "
                  f"highest sample at {peak_at[0]:.0f} s into training", ""]  # fmt: skip
    if summary.get("trl"):
        trl = summary["trl"]
        lines += [f"TRL default over {trl['steps_measured']} steps after {summary['warmup']} warm-up: "
                  f"{trl['trained_tokens_per_s']:.0f} tok/s, peak RSS {trl['peak_rss_gb']:.2f} GB", ""]
    lines += bench_train.figures_table(summary["figures"])
    lines.append("\nGB here are GiB (2^30 bytes), as trl_baseline.py reports max RSS; tunesmith prints its estimate "
                 "in 10^9 bytes, converted here.")
    return "\n".join(lines)


def whole_run(args, data: Path, work: Path) -> tuple[dict, str]:
    """`tunesmith run FILE` as a user runs it, in a fresh process."""
    from tunesmith.models import resolve_model

    resolve_model(MODEL)  # the one-time conversion, cached as after a user's first run
    run_dir = work / "run"
    command = [sys.executable, "-m", "tunesmith", "run", str(data), "--set", f"run_dir={run_dir}"]
    for item in args.overrides:
        command += ["--set", item]
    load_before = bench_train.uptime()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=work, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"tunesmith run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    timings = json.loads((run_dir / "timings.json").read_text())
    info = json.loads((run_dir / "train_info.json").read_text())
    speed = bench_train.log_figures(run_dir, args.warmup) if (run_dir / "train_log.jsonl").is_file() else {}
    summary = {"name": "short-rows-whole-run", "load_before": load_before, "load_after": bench_train.uptime(),
               "rows": args.rows, "overrides": args.overrides, "wall_s": round(wall, 1), "timings": timings,
               "peak_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2,
               "train_steps": info.get("steps"), "compiled": info["estimate"]["compiled"],
               "estimated_peak_gb": info["estimate"]["peak_memory_gb"], "train_speed": speed}  # fmt: skip
    lines = [f"load before: {load_before}", f"load after:  {summary['load_after']}", "",
             f"`tunesmith run` on {args.rows} rows ({' '.join(args.overrides) or 'all defaults'}): "
             f"{wall / 60:.1f} min in all (target <= 15 min: {'met' if wall <= 900 else 'NOT met'}), "
             f"{summary['train_steps']} training steps, compiled: {summary['compiled']}, max RSS "
             f"{summary['peak_rss_gb']:.2f} GB", "", "| phase | seconds | minutes |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {phase} | {seconds:.1f} | {seconds / 60:.1f} |" for phase, seconds in timings.items()]
    lines.append(f"| process (start-up and report included) | {wall:.1f} | {wall / 60:.1f} |")
    if speed:
        low, high = speed["tokens_per_s_range"]
        lines.append(f"\ntraining tok/s: median {speed['tokens_per_s_median']:.0f}, range {low:.0f}-{high:.0f}, "
                     f"{speed['tokens_per_s_whole_run']:.0f} over the whole run")
    return summary, "\n".join(lines)


def save(name: str, summary: dict, text: str) -> None:
    from tunesmith.runs import atomic_write_json, atomic_write_text

    atomic_write_json(RESULTS / f"{name}.json", summary)
    atomic_write_text(RESULTS / f"{name}.md", text + "\n")


if __name__ == "__main__":
    main()
