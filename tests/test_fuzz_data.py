"""Fuzzing the data loaders: any file gives rows or tunesmith's own one-paragraph error, never a traceback."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.data.load import load_rows
from tunesmith.errors import TunesmithError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
SUFFIXES = [".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet"]
# odd Unicode: combining marks, RTL, zero-width, NUL, BOM, lone surrogates escaped in JSON, astral plane
ODD = st.sampled_from(["\u0301", "\u202e", "\u200b", "\x00", "\ufeff", "\U0001f600", "\u2028", "\r", "\"", ",",
                       "\n", "\t", "\\", "\ud800"])
text = st.text(alphabet=st.characters(codec="utf-8") | ODD, max_size=30) | st.text(max_size=10)
COLUMNS = ["question", "answer", "prompt", "completion", "instruction", "input", "output", "messages", "text",
           "role", "content"]
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(COLUMNS) | text, inner, max_size=3), max_leaves=8)
row = st.dictionaries(st.sampled_from(COLUMNS) | text, value, max_size=4) | value


def _load(tmp_path, name: str, content: bytes, fmt: str = "auto", on_bad_rows: str = "error"):
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    path = folder / name
    path.write_bytes(content)
    try:
        result = load_rows(path, fmt, on_bad_rows=on_bad_rows, work_dir=folder / "work")
    except TunesmithError as err:
        assert str(err).strip()  # a message, not an empty error
        return None
    return result


@FUZZ
@given(content=st.binary(max_size=300), suffix=st.sampled_from(SUFFIXES))
def test_fuzz_random_bytes(tmp_path, content, suffix):
    _load(tmp_path, f"data{suffix}", content)


@FUZZ
@given(rows=st.lists(row, max_size=6), fmt=st.sampled_from(["auto", "qa", "messages", "text", "prompt_completion"]),
       skip=st.booleans())
def test_fuzz_jsonl_rows_of_wrong_types(tmp_path, rows, fmt, skip):
    content = "\n".join(json.dumps(r, ensure_ascii=bool(len(rows) % 2)) for r in rows).encode("utf-8", "surrogatepass")
    _load(tmp_path, "data.jsonl", content, fmt, "skip" if skip else "error")


@FUZZ
@given(rows=st.lists(st.fixed_dictionaries({"question": text, "answer": text}), min_size=1, max_size=5),
       cut=st.integers(0, 400), json_array=st.booleans())
def test_fuzz_truncated_files(tmp_path, rows, cut, json_array):
    if json_array:
        name, content = "data.json", json.dumps(rows).encode()
    else:
        name, content = "data.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode()
    result = _load(tmp_path, name, content[:cut])
    if result is not None and cut >= len(content):
        assert len(result.rows) == sum(1 for r in rows if r["question"].strip() and r["answer"].strip())


@FUZZ
@given(cells=st.lists(st.lists(text, min_size=1, max_size=3), min_size=1, max_size=5),
       quote=st.sampled_from(['"', "", "'"]), delimiter=st.sampled_from([",", "\t"]))
def test_fuzz_csv_quoting(tmp_path, cells, quote, delimiter):
    header = delimiter.join(["question", "answer"])
    lines = [delimiter.join(f"{quote}{c}{quote}" for c in line) for line in cells]
    content = "\r\n".join([header, *lines]).encode("utf-8", "surrogatepass")
    _load(tmp_path, "data.csv" if delimiter == "," else "data.tsv", content)


@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xff\xfe{\x00}", b"[" * 5000, b'{"question":' * 3000])
def test_pathological_files(tmp_path, content):
    for suffix in (".json", ".jsonl"):
        _load(tmp_path, f"data{suffix}", content)
