"""Read raw rows from every supported file kind, each with where it came from ("file:line").

Readers stream: a JSONL, CSV or Parquet file, or a saved dataset, is never held in memory whole.
A row that cannot even be read (malformed JSON, invalid UTF-8) comes out as a `RawRow` with a
`problem` instead of data, so the loader can report it beside the rows that fail conversion.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.errors import TunesmithError

SUFFIXES = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
    ".parquet": "parquet", ".pq": "parquet", ".txt": "txt",
}
BATCH = 1000


@dataclass(frozen=True)
class RawRow:
    source: str  # "file:line" (or "file:row" for Parquet and saved datasets)
    data: Any = None
    problem: str | None = None


def read_rows(path: Path, shown: str, split: str | None = None) -> Iterator[RawRow]:
    """Every row of `path` (a file or a folder); `shown` is how the path is printed in messages.

    `split` picks a split of a saved DatasetDict (default: its train split, or its only one).
    """
    if not path.exists():
        raise TunesmithError(f"data.path: {shown} does not exist")
    if path.is_dir():
        return _folder(path, shown, split)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise TunesmithError(
            f"data.path: {shown}: unsupported file type '{path.suffix}'; use JSONL, JSON, CSV, Parquet, "
            "a .txt file or a folder of .txt files, or a folder written by datasets' save_to_disk"
        )
    readers = {"jsonl": _jsonl, "json": _json, "csv": _csv, "tsv": _csv, "parquet": _parquet, "txt": _txt_file}
    return readers[kind](path, shown)


def _jsonl(path: Path, shown: str) -> Iterator[RawRow]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            yield _parse_line(raw, f"{shown}:{number}")


def _parse_line(raw: bytes, source: str) -> RawRow:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return RawRow(source, problem=f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})")
    try:
        return RawRow(source, json.loads(text.rstrip("\r\n")))
    except json.JSONDecodeError as err:
        return RawRow(source, problem=f"not valid JSON ({err.msg} at column {err.pos + 1})")
    except RecursionError:
        return RawRow(source, problem="JSON nested too deeply to read")


def _json(path: Path, shown: str) -> Iterator[RawRow]:
    """A JSON array of rows; each element keeps the line it starts on. A file of JSON lines also works."""
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    start = len(text) - len(text.lstrip())
    if not text[start:start + 1] == "[":
        yield from _jsonl(path, shown)
        return
    decoder = json.JSONDecoder()
    at, line, counted = start + 1, 1, 0
    while True:
        at = _skip_space(text, at)
        if text.startswith("]", at):
            return
        line += text.count("\n", counted, at)
        counted = at
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError as err:
            raise TunesmithError(
                f"{shown}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno}); a JSON array "
                "is read as a whole, so fix the file (or write one row per line as JSONL)"
            ) from None
        except RecursionError:
            raise TunesmithError(f"{shown}:{line}: JSON nested too deeply to read") from None
        yield _surrogate_check(RawRow(f"{shown}:{line}", value))
        at = _skip_space(text, at)
        if text.startswith(",", at):
            at += 1
        elif not text.startswith("]", at):
            bad_line = line + text.count("\n", counted, at)
            raise TunesmithError(f"{shown}:{bad_line}: not valid JSON (expected ',' or ']' between rows)")


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _surrogate_check(row: RawRow) -> RawRow:
    """Text decoded with surrogateescape carries invalid UTF-8 bytes as lone surrogates."""
    if row.problem is None and _has_surrogates(row.data):
        return RawRow(row.source, problem="not valid UTF-8")
    return row


def _has_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, list) and any(_has_surrogates(item) for item in value)


def _csv(path: Path, shown: str) -> Iterator[RawRow]:
    csv.field_size_limit(1 << 30)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        start = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield RawRow(f"{shown}:{start}", problem=f"not valid CSV ({err})")
                start = reader.line_num + 1
                continue
            if values:
                row = dict(zip(header, values, strict=False))
                problem = None if len(values) == len(header) else f"{len(values)} values for {len(header)} columns"
                yield _surrogate_check(RawRow(f"{shown}:{start}", row, problem))
            start = reader.line_num + 1


def _parquet(path: Path, shown: str) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - any failure here means the file is not Parquet
        raise TunesmithError(f"data.path: {shown} is not a readable Parquet file ({err})") from None
    number = 0
    for batch in table.iter_batches(batch_size=BATCH):
        for row in batch.to_pylist():
            number += 1
            yield RawRow(f"{shown}:{number}", row)


def _txt_file(path: Path, shown: str) -> Iterator[RawRow]:
    raw = path.read_bytes()
    try:
        yield RawRow(f"{shown}:1", {"text": raw.decode("utf-8").lstrip("\ufeff")})
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        yield RawRow(f"{shown}:{line}", problem=f"not valid UTF-8 (byte 0x{raw[err.start]:02x})")


def saved_splits(path: Path) -> list[str]:
    """The split names of a DatasetDict saved with save_to_disk at `path` ([] for anything else)."""
    try:
        return list(json.loads((Path(path) / "dataset_dict.json").read_text(encoding="utf-8"))["splits"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _folder(path: Path, shown: str, split: str | None) -> Iterator[RawRow]:
    if any((path / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")):
        return _saved_dataset(path, shown, split)
    texts = sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not texts:
        raise TunesmithError(
            f"data.path: the folder {shown} holds neither .txt files nor a dataset saved with save_to_disk"
        )
    return (row for text in texts for row in _txt_file(text, f"{shown.rstrip('/')}/{text.relative_to(path)}"))


def _saved_dataset(path: Path, shown: str, split: str | None) -> Iterator[RawRow]:
    from datasets import DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(path))
    except (OSError, ValueError) as err:  # FileNotFoundError, corrupt state.json, ...
        raise TunesmithError(f"data.path: {shown} is not a readable saved dataset ({err})") from None
    if isinstance(loaded, DatasetDict):
        if split is not None and split not in loaded:
            raise TunesmithError(f"data.path: {shown} has no '{split}' split (it has {', '.join(loaded)})")
        if split is None and "train" not in loaded and len(loaded) != 1:
            raise TunesmithError(f"data.path: {shown} has the splits {list(loaded)}; which one? (expected 'train')")
        split = split or ("train" if "train" in loaded else next(iter(loaded)))
        loaded = loaded[split]
        shown = f"{shown}[{split}]"
    number = 0
    for batch in loaded.iter(batch_size=BATCH):
        for row in (dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)):
            number += 1
            yield RawRow(f"{shown}:{number}", row)
