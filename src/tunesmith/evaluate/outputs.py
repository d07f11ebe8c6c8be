"""The files evaluation writes (atomically) under run_dir/eval/, and reading them back."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir, atomic_write_json, atomic_write_text

T = TypeVar("T")

MODELS = ("base", "few_shot", "tuned")
PER_MODEL_FIELDS = (
    "prediction", "stopped", "new_tokens", "scores", "tags", "knowledge", "nll", "answer_tokens", "judge",
)  # fmt: skip
SHARED_FIELDS = ("index", "source", "question", "prompt", "reference")


def finite(value: Any) -> Any:
    """NaN and infinities become None, so files are strict JSON that any tool can read."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(finite(row), ensure_ascii=False) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_user_jsonl(path: str | Path, label: str, hint: str, parse: Callable[[dict, str], T]) -> list[T]:
    """`parse(object, "file:line")` of every non-blank line of a user's JSONL file.

    Raises:
        TunesmithError: `label: ...` for a missing, unreadable or empty file; file:line for a line that
            is not a JSON object (`hint` says what a row should look like).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TunesmithError(f"{label}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise TunesmithError(f"{label}: cannot read {path} ({err})") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise TunesmithError(f"{where}: not valid JSON ({err.msg}); {hint}") from None
        if not isinstance(raw, dict):
            raise TunesmithError(f"{where}: expected an object; {hint}")
        rows.append(parse(raw, where))
    if not rows:
        raise TunesmithError(f"{label}: {path} has no rows; {hint}")
    return rows


def read_json(path: Path) -> Any | None:
    """The parsed file, or None if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def side_by_side(records: dict[str, list[dict]]) -> list[dict]:
    """One row per test example: prompt and reference once, then each model's answer and scores."""
    rows: dict[int, dict] = {}
    # the zero-shot prompt is the one worth showing; the few-shot prompt is in predictions_few_shot.jsonl
    for name in sorted(records, key=lambda n: n == "few_shot"):
        for record in records[name]:
            row = rows.setdefault(record["index"], {field: record.get(field) for field in SHARED_FIELDS})
            row[name] = {field: record.get(field) for field in PER_MODEL_FIELDS}
    return [rows[index] for index in sorted(rows)]


def write_outputs(run: RunDir, results: dict[str, tuple[list[dict], dict]], info: dict, *, keep_previous: bool) -> None:
    """Per-model predictions, the side-by-side file, metrics.json and compare.json.

    With `keep_previous`, models evaluated earlier (whose prediction files exist) are kept.
    """
    metrics = {name: summary for name, (_, summary) in results.items()}
    records = {name: rows for name, (rows, _) in results.items()}
    if keep_previous:
        previous = read_json(run.metrics) or {}
        for name in MODELS:
            path = run.eval / f"predictions_{name}.jsonl"
            if name not in metrics and name in previous and path.is_file():
                metrics[name], records[name] = previous[name], read_jsonl(path)
    for name, rows in records.items():
        if name in results:
            write_jsonl(run.eval / f"predictions_{name}.jsonl", rows)
    write_jsonl(run.eval / "predictions.jsonl", side_by_side(records))
    atomic_write_json(run.metrics, finite({name: metrics[name] for name in MODELS if name in metrics}))
    atomic_write_json(run.eval / "compare.json", finite(info))
