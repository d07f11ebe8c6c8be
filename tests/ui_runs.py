"""Run directories for the dashboard's tests: an evaluated run, an interrupted one, one training now."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml

from test_report_write import make_reported_run

ESTIMATE = {"peak_memory_gb": 2.5, "step_time_s": 7.25, "tokens_per_s": 90.0}
MEASURED = {"peak_memory_gb": 1.9, "step_time_s": 26.5, "tokens_per_s": 18.5}


def make_runs(root: Path, monkeypatch) -> Path:
    """RUNS_DIR with `run` (evaluated, finished), `old` (stopped mid-training) and `live` (training)."""
    finished = make_reported_run(root, monkeypatch)
    info = {"steps": 20, "final_loss": 0.15, "eval_loss": 0.56, "estimate": ESTIMATE, "measured": MEASURED}
    (finished / "train_info.json").write_text(json.dumps(info))
    metrics_path = finished / "eval" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["tuned"]["knowledge_accuracy"] = 0.75  # metrics this page has never heard of show up as they are
    metrics["forgetting"] = {"general_loss_change": 0.02}
    metrics_path.write_text(json.dumps(metrics))
    config = yaml.safe_load((finished / "config.yaml").read_text())
    for name, lr in (("old", 1e-3), ("live", 5e-4)):
        run = root / name
        run.mkdir()
        changed = {**config, "run_dir": str(run), "train": {"learning_rate": lr, "max_steps": 40}}
        (run / "config.yaml").write_text(yaml.safe_dump(changed))
        log = [{"step": s, "loss": 4.0 - s / 10, "lr": lr, "tokens_seen": 100 * s, "tokens_per_s": 50.0}
               for s in range(1, 11)]
        (run / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    hour_ago = time.time() - 3600
    os.utime(root / "old" / "train_log.jsonl", (hour_ago, hour_ago))
    return root
