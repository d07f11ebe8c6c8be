"""Load a data file into canonical examples, streamed into an Arrow file (memory-mapped).

Bad rows are never dropped silently: by default the first few stop prep with file:line and
the reason; with `on_bad_rows="skip"` they are left out, counted and listed for the report.
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
    path: str | Path, fmt: str = "auto", fields: dict[str, str] | None = None, on_bad_rows: str = "error",
    *, system_prompt: str | None = None, work_dir: Path | None = None,
) -> LoadResult:
    """Read `path` (any supported file or folder) into canonical examples.

    Args:
        fmt: a format name from `formats.FIELDS`, or "auto" to guess from the first row's columns.
        fields: canonical field name -> the column holding it.
        on_bad_rows: "error" raises TunesmithError naming the first bad rows; "skip" leaves them out.
        system_prompt: a system message put in front of every example that has none.
        work_dir: where the Arrow file of rows is written (a new temporary folder if None).
    """
    fields = fields or {}
    check_fields(fields)
    shown = str(path)
    try:
        return _load(Path(path), shown, fmt, fields, on_bad_rows, system_prompt, work_dir)
    except OSError as err:
        raise TunesmithError(f"data.path: reading {shown} failed ({err.strerror or err})") from None


def _load(path: Path, shown: str, fmt: str, fields: dict[str, str], on_bad_rows: str, system_prompt: str | None,
          work_dir: Path | None) -> LoadResult:
    head, rest = _peek(read_rows(path, shown))
    columns = _columns(head[-1]) if head and head[-1].problem is None else None
    if columns is None:
        bad = [BadRow(r.source, r.problem or "") for r in head]
        if not bad:
            raise TunesmithError(f"data.path: {shown} holds no rows")
        raise TunesmithError(_bad_rows_message(shown, bad, len(bad), skippable=False))
    fmt, why = guess_format(columns, fields) if fmt == "auto" else (fmt, "set in data.format")
    mapping = fields_for(fmt, fields, columns)
    writer = ArrowRows(Path(work_dir or tempfile.mkdtemp(prefix="tunesmith-rows-")), text_schema())
    rejected, count = _convert(itertools.chain(head, rest), fmt, mapping, system_prompt, writer)
    rows = writer.finish()
    if count and on_bad_rows != "skip":
        raise TunesmithError(_bad_rows_message(shown, rejected, count, columns=columns))
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
    shown: str, rejected: list[BadRow], count: int, *, columns: list[str] | None = None, skippable: bool = True
) -> str:
    lines = [f"data.path: {count} bad row{'s' if count != 1 else ''} in {shown}:"]
    lines += [f"  {bad}" for bad in rejected[:SHOWN_IN_ERROR]]
    if count > SHOWN_IN_ERROR:
        lines.append(f"  ... and {count - SHOWN_IN_ERROR} more")
    if columns is not None and any(b.problem.startswith("missing field") for b in rejected[:SHOWN_IN_ERROR]):
        lines.append(f"The first row has the columns {', '.join(columns)}: map them with data.fields.")
    if skippable:
        lines.append("Fix these rows, or set data.on_bad_rows: skip to leave them out (the data report lists them).")
    else:
        lines.append("No row could be read: fix the file.")
    return "\n".join(lines)
