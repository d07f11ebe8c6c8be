"""What the dashboard knows about runs, read from each run directory's files (none of them required).

A run is any folder under RUNS_DIR (or RUNS_DIR itself) with a config.yaml. Its status comes from
the files: `train_info.json` is written when training ends (finished); a live process launched from
the page, or a train_log.jsonl written in the last `LIVE_SECONDS`, means running; a launch that
exited non-zero means failed; anything else that started training is interrupted (resumable).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import yaml

from tunesmith.evaluate.outputs import read_json
from tunesmith.report.collect import read_train_log
from tunesmith.runs import RunDir
from tunesmith.ui import launches

LIVE_SECONDS = 90.0
HEADLINE = ("exact_match", "token_f1", "rouge_l")


def find_runs(runs_dir: Path) -> list[Path]:
    """Run directories under `runs_dir` (one level down, or `runs_dir` itself), plus launched ones."""
    found = {p.parent for p in runs_dir.glob("*/config.yaml")}
    if (runs_dir / "config.yaml").is_file():
        found.add(runs_dir)
    found |= {path for path in launches.launched_dirs(runs_dir) if path.is_dir() or path.parent == runs_dir}
    return sorted(found, key=lambda p: p.name)


def read_yaml(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def status(run: RunDir, runs_dir: Path, now: float | None = None, log: list[dict] | None = None) -> str:
    launch = launches.state(runs_dir, run.root)
    if launch and launch.get("running"):
        return "running"
    if (run.root / "train_info.json").is_file():
        return "finished" if not launch or launch.get("returncode") in (None, 0) else "failed"
    if launch and launch.get("returncode") not in (None, 0):
        return "failed"
    path = run.train_log
    now = time.time() if now is None else now
    if path.is_file() and now - path.stat().st_mtime < live_window(read_train_log(path) if log is None else log):
        return "running"
    if path.is_file() or run.checkpoints.is_dir():
        return "interrupted"
    return "not started"


def live_window(log: list[dict]) -> float:
    """How long a training run may go without a log record and still count as running: LIVE_SECONDS,
    or three of its own gaps between records (tokens between them / tokens per second) if longer."""
    records = [r for r in log if isinstance(r.get("tokens_seen"), int | float) and r.get("tokens_per_s")]
    if len(records) < 2:
        return LIVE_SECONDS
    gap = (records[-1]["tokens_seen"] - records[-2]["tokens_seen"]) / records[-1]["tokens_per_s"]
    return max(LIVE_SECONDS, 3 * gap)


def planned_steps(config: dict, data_report: dict) -> int | None:
    """The run's total optimizer steps as training computes them (max_steps, or epochs x steps per epoch)."""
    train = config.get("train") or {}
    if train.get("max_steps"):
        return int(train["max_steps"])
    rows = data_report.get("train_rows") or data_report.get("train_examples")
    per_step = (train.get("batch_size") or 8) * (train.get("grad_accum") or 1)
    if not rows:
        return None
    return max(1, math.ceil((train.get("epochs") or 3) * math.ceil(rows / per_step)))


def summary(path: Path, runs_dir: Path) -> dict[str, Any]:
    """One row of the runs table."""
    run = RunDir(path)
    config = read_yaml(run.config)
    log = read_train_log(run.train_log)
    info = read_json(run.root / "train_info.json") or {}
    metrics = read_json(run.metrics) or {}
    eval_losses = [r["eval_loss"] for r in log if isinstance(r.get("eval_loss"), int | float)]
    steps = max((r.get("step", 0) for r in log if "loss" in r), default=0)
    return {
        "name": _name(path, runs_dir),
        "path": str(path),
        "model": config.get("model"),
        "method": (config.get("train") or {}).get("method"),
        "data": (config.get("data") or {}).get("path"),
        "status": status(run, runs_dir, log=log),
        "steps": info.get("steps") or steps,
        "planned_steps": planned_steps(config, read_json(run.data_report) or {}),
        "best_eval_loss": min(eval_losses) if eval_losses else None,
        "metrics": {model: {k: values.get(k) for k in HEADLINE if k in values}
                    for model, values in metrics.items() if isinstance(values, dict) and "n" in values},
        "updated": max((p.stat().st_mtime for p in (run.train_log, run.config, run.metrics) if p.is_file()),
                       default=None),
    }


def _name(path: Path, runs_dir: Path) -> str:
    return "." if path == runs_dir else path.relative_to(runs_dir).as_posix()


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} -> {"train.lr": 1}; lists and scalars are leaves."""
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_diff(a: dict, b: dict) -> list[dict]:
    """Every config key whose value differs between two runs (run_dir included)."""
    flat_a, flat_b = flatten(a), flatten(b)
    keys = sorted(set(flat_a) | set(flat_b))
    return [{"key": k, "a": flat_a.get(k), "b": flat_b.get(k)} for k in keys if flat_a.get(k) != flat_b.get(k)]
