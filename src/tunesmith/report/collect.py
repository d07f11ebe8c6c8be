"""Gather what the report shows from the run directory's files, tolerating any that are missing."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from tunesmith.errors import TunesmithError
from tunesmith.evaluate.examples import LEAD_METRICS
from tunesmith.evaluate.outputs import read_json, read_jsonl
from tunesmith.runs import RunDir

PACKAGES = ("tunesmith", "torch", "transformers", "peft", "datasets", "accelerate")


@dataclass
class ReportData:
    run: RunDir
    metrics: dict  # eval/metrics.json: {model: {metric: value}}
    rows: list[dict]  # eval/predictions.jsonl, side by side
    info: dict = field(default_factory=dict)  # eval/compare.json
    train_log: list[dict] = field(default_factory=list)
    data_report: dict = field(default_factory=dict)
    lengths: dict[str, list[int]] = field(default_factory=dict)  # split -> token length of each example
    config: dict = field(default_factory=dict)
    fingerprint: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    @property
    def task_type(self) -> str:
        task = self.info.get("task") or {}
        found = task.get("type") or next((m.get("task_type") for m in self.metrics.values()), None)
        return found if found in LEAD_METRICS else "extraction"

    @property
    def task_reason(self) -> str:
        return (self.info.get("task") or {}).get("reason", "")

    @property
    def lead(self) -> list[str]:
        return LEAD_METRICS[self.task_type]


def collect(run_dir: Path) -> ReportData:
    """Read every file the report uses; only eval/metrics.json is required.

    Raises:
        TunesmithError: If the run has not been evaluated yet.
    """
    run = RunDir(Path(run_dir))
    metrics = read_json(run.metrics)
    if not isinstance(metrics, dict) or not metrics:
        raise TunesmithError(f"{run.metrics} is missing: run `tunesmith compare {run.root}` first")
    rows_path = run.eval / "predictions.jsonl"
    return ReportData(
        run=run,
        metrics=metrics,
        rows=read_jsonl(rows_path) if rows_path.is_file() else [],
        info=read_json(run.eval / "compare.json") or {},
        train_log=read_train_log(run.train_log),
        data_report=read_json(run.data_report) or {},
        lengths=split_lengths(run.data),
        config=_yaml(run.config),
        fingerprint=read_json(run.data / "fingerprint.json") or {},
        timings=read_json(run.root / "timings.json") or {},
        versions=versions(),
    )


def read_train_log(path: Path) -> list[dict]:
    """Records of train_log.jsonl; a torn last line (a crash mid-write) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def split_lengths(data_dir: Path) -> dict[str, list[int]]:
    """Token length of every prepared example, per split, read from the Arrow column (no decoding)."""
    lengths: dict[str, list[int]] = {}
    for split in ("train", "test"):
        if not (data_dir / split).is_dir():
            continue
        try:
            import pyarrow.compute as pc
            from datasets import load_from_disk

            column = load_from_disk(str(data_dir / split)).data.column("input_ids")
            lengths[split] = pc.list_value_length(column).to_pylist()
        except Exception:  # noqa: BLE001 - a report without the histogram beats no report
            continue
    return lengths


def _yaml(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found
