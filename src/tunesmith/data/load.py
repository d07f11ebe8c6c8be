"""Load a data file into canonical examples, streamed into an Arrow file (memory-mapped).

Bad rows are never dropped silently. By default ("auto") they are left out when they are at
most `max_bad_fraction` of the rows (a stray empty row in a big file) and stop prep otherwise;
"error" always stops, "skip" always leaves them out. Stopping names the first few with
file:line and the reason; skipped rows are counted and listed for the report.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tunesmith.data.arrowio import ArrowRows, text_schema
from tunesmith.data.formats import RowProblem, canonical, check_fields, fields_for, guess_format
from tunesmith.data.readers import RawRow, read_rows
from tunesmith.errors import TunesmithError

MAX_LISTED = 10_000  # rejected rows kept by name; the count is always exact
SHOWN_IN_ERROR = 5


@dataclass(frozen=True)
class BadRow:
    source: str  # "file:line"
    problem: str

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}"


@dataclass
class LoadResult:
    rows: object  # datasets.Dataset with columns example (JSON of the canonical row), source
    rejected: list[BadRow]  # the first MAX_LISTED bad rows
    rejected_count: int
    chosen_format: str
    format_reason: str  # "guessed from the columns question, answer" or "set in data.format"

    def examples(self) -> list[dict]:
        return [json.loads(e) for e in self.rows["example"]]


def load_rows(
    path: str | Path, fmt: str = "auto", fields: dict[str, str] | None = None, on_bad_rows: str = "auto",
    *, system_prompt: str | None = None, work_dir: Path | None = None, max_bad_fraction: float = 0.01,
    split: str | None = None,
) -> LoadResult:
    """Read `path` (any supported file or folder) into canonical examples.

    Args:
        fmt: a format name from `formats.FIELDS`, or "auto" to guess from the first row's columns.
        fields: canonical field name -> the column holding it.
        on_bad_rows: "error" raises TunesmithError naming the first bad rows; "skip" leaves them out;
            "auto" skips them when they are at most `max_bad_fraction` of all rows, else raises.
        system_prompt: a system message put in front of every example that has none.
        work_dir: where the Arrow file of rows is written (a new temporary folder if None).
        split: for a saved DatasetDict, which split to read (default: train).
    """
    fields = fields or {}
    check_fields(fields)
    shown = str(path)
    try:
        rule = BadRowRule(on_bad_rows, max_bad_fraction)
        return _load(Path(path), shown, fmt, fields, rule, system_prompt, work_dir, split)
    except OSError as err:
        raise TunesmithError(f"data.path: reading {shown} failed ({err.strerror or err})") from None


@dataclass(frozen=True)
class BadRowRule:
    mode: str  # auto | error | skip
    max_fraction: float

    def stops(self, bad: int, total: int) -> bool:
        if bad == 0 or self.mode == "skip":
            return False
        return self.mode == "error" or bad > self.max_fraction * total

    def advice(self, bad: int, total: int) -> str:
        if self.mode == "auto":
            return (f"They are {bad / total:.1%} of {total:,} rows, more than data.max_bad_rows_fraction "
                    f"({self.max_fraction:.0%}) that is skipped by itself. Fix these rows, or set "
                    "data.on_bad_rows: skip to leave them out (the data report lists them).")
        return "Fix these rows, or set data.on_bad_rows: skip to leave them out (the data report lists them)."


def _load(path: Path, shown: str, fmt: str, fields: dict[str, str], rule: BadRowRule, system_prompt: str | None,
          work_dir: Path | None, split: str | None) -> LoadResult:
    head, rest = _peek(read_rows(path, shown, split))
    columns = _columns(head[-1]) if head and head[-1].problem is None else None
    if columns is None:
        bad = [BadRow(r.source, r.problem or "") for r in head]
        if not bad:
            raise TunesmithError(f"data.path: {shown} holds no rows")
        raise TunesmithError(_bad_rows_message(shown, bad, len(bad)))
    fmt, why = guess_format(columns, fields) if fmt == "auto" else (fmt, "set in data.format")
    mapping = fields_for(fmt, fields, columns)
    writer = ArrowRows(Path(work_dir or tempfile.mkdtemp(prefix="tunesmith-rows-")), text_schema())
    rejected, count = _convert(itertools.chain(head, rest), fmt, mapping, system_prompt, writer)
    rows = writer.finish()
    if rule.stops(count, count + len(rows)):
        advice = rule.advice(count, count + len(rows))
        raise TunesmithError(_bad_rows_message(shown, rejected, count, columns=columns, advice=advice))
    if len(rows) == 0:
        raise TunesmithError(f"data.path: {shown}: no usable rows ({count} bad, all left out)")
    return LoadResult(rows, rejected, count, fmt, why)


def _convert(rows: Iterator[RawRow], fmt: str, mapping: dict[str, str], system_prompt: str | None,
             writer: ArrowRows) -> tuple[list[BadRow], int]:
    """Write every good row as a canonical example; return (the first MAX_LISTED bad rows, how many in all)."""
    rejected: list[BadRow] = []
    count = 0
    for raw in rows:
        try:
            if raw.problem is not None:
                raise RowProblem(raw.problem)
            example = canonical(raw.data, fmt, mapping, system_prompt)
        except RowProblem as err:
            count += 1
            if len(rejected) < MAX_LISTED:
                rejected.append(BadRow(raw.source, str(err)))
            continue
        writer.add({"example": json.dumps(example, ensure_ascii=False), "source": raw.source})
    return rejected, count


def _peek(rows: Iterator[RawRow]) -> tuple[list[RawRow], Iterator[RawRow]]:
    """Rows up to and including the first readable one (whose columns decide the format)."""
    head: list[RawRow] = []
    for row in rows:
        head.append(row)
        if row.problem is None and isinstance(row.data, dict):
            break
    return head, rows


def _columns(row: RawRow) -> list[str] | None:
    return list(row.data) if isinstance(row.data, dict) else None


def _bad_rows_message(
    shown: str, rejected: list[BadRow], count: int, *, columns: list[str] | None = None, advice: str | None = None
) -> str:
    lines = [f"data.path: {count} bad row{'s' if count != 1 else ''} in {shown}:"]
    lines += [f"  {bad}" for bad in rejected[:SHOWN_IN_ERROR]]
    if count > SHOWN_IN_ERROR:
        lines.append(f"  ... and {count - SHOWN_IN_ERROR} more")
    if columns is not None and any(b.problem.startswith("missing field") for b in rejected[:SHOWN_IN_ERROR]):
        lines.append(f"The first row has the columns {', '.join(columns)}: map them with data.fields.")
    lines.append(advice or "No row could be read: fix the file.")
    return "\n".join(lines)
