"""The data behind each view of one run: training curves, data report and examples, comparison."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from tunesmith.errors import TunesmithError
from tunesmith.evaluate.analysis import count_changes, example_score
from tunesmith.evaluate.outputs import read_json, read_jsonl
from tunesmith.report.collect import read_train_log, split_lengths
from tunesmith.runs import RunDir
from tunesmith.ui.runs_index import planned_steps, read_yaml

EXAMPLES_PER_PAGE = 10


def training(run: RunDir, since: int = 0) -> dict[str, Any]:
    """Log records from line `since` on, plus the plan (total steps) and train_info.json when written."""
    records = read_train_log(run.train_log)
    config = read_yaml(run.config)
    return {
        "records": records[since:],
        "next": len(records),
        "planned_steps": planned_steps(config, read_json(run.data_report) or {}),
        "info": read_json(run.root / "train_info.json"),
    }


def data_overview(run: RunDir) -> dict[str, Any]:

    return {"report": read_json(run.data_report), "lengths": split_lengths(run.data)}


def data_examples(run: RunDir, split: str, offset: int, count: int = EXAMPLES_PER_PAGE) -> dict[str, Any]:
    """Prepared examples as the model sees them: spans of masked (prompt) and trained (response) tokens."""
    from datasets import load_from_disk

    from tunesmith.data.show import examples, token_spans

    if split not in ("train", "test") or not (run.data / split).is_dir():
        raise TunesmithError(f"{run.data / split} does not exist: run `tunesmith prep` first")
    dataset = load_from_disk(str(run.data / split))
    tokenizer = _tokenizer(str(run.root))
    rows = []
    for k, row in enumerate(examples(dataset.select(range(offset, min(len(dataset), offset + count))))):
        rows.append({"index": offset + k, "source": row["source"], "spans": token_spans(
            tokenizer, row["input_ids"], row["labels"])})
    return {"split": split, "total": len(dataset), "offset": offset, "examples": rows}


@lru_cache(maxsize=8)
def _tokenizer(run_root: str):
    from tunesmith.models import load_tokenizer, resolve_model

    config = read_yaml(Path(run_root) / "config.yaml")
    if not config.get("model"):
        raise TunesmithError(f"{run_root}/config.yaml names no model")
    return load_tokenizer(resolve_model(config["model"]).path, bool(config.get("trust_remote_code")))


def comparison(run: RunDir) -> dict[str, Any]:
    """metrics.json as it is (new metrics show up unchanged), the side-by-side rows with the tuned
    model's per-example change, and the error tags found."""
    metrics = read_json(run.metrics)
    info = read_json(run.eval / "compare.json") or {}
    path = run.eval / "predictions.jsonl"
    rows = read_jsonl(path) if path.is_file() else []
    task = (info.get("task") or {}).get("type") or _task_from(metrics) or "extraction"
    tags: set[str] = set()
    for row in rows:
        before, after = example_score(row, "base", task), example_score(row, "tuned", task)
        row["tuned_change"] = None if before is None or after is None else after - before
        for value in row.values():
            if isinstance(value, dict):
                tags.update(value.get("tags") or [])
    checks = (read_json(run.data_report) or {}).get("checks") or {}
    return {
        "metrics": metrics,
        "info": info,
        "task_type": task,
        "changes": count_changes(rows, task) if rows else None,
        "rows": rows,
        "tags": sorted(tags),
        "template_check": checks.get("template"),
        "other": _other_eval_files(run),
        "report": run.report_html.is_file(),
    }


KNOWN_FILES = {"metrics.json", "compare.json", "train_info.json", "timings.json"}


def _other_eval_files(run: RunDir) -> dict[str, Any]:
    """Results this page has no view for (eval/*.json beyond metrics, a check's JSON beside the run's
    files), shown as they are so that new kinds of results appear without a change here."""
    found = {}
    for path in sorted(run.eval.glob("*.json")) + sorted(run.root.glob("*.json")):
        if path.name not in KNOWN_FILES and (data := read_json(path)) is not None:
            found[path.stem if path.parent == run.eval else f"{path.stem} (run)"] = data
    return found


def _task_from(metrics: Any) -> str | None:
    if not isinstance(metrics, dict):
        return None
    return next((m.get("task_type") for m in metrics.values() if isinstance(m, dict) and m.get("task_type")), None)
