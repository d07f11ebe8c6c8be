"""Every file kind and row shape loads into canonical examples; every bad row is named by file:line."""

import csv

import pytest

from rows_io import load, write_jsonl
from tunesmith.errors import TunesmithError

QA_MESSAGES = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}]


@pytest.mark.parametrize(
    ("row", "fmt", "expected"),
    [
        ({"question": "Q1", "answer": "A1"}, "qa", {"messages": QA_MESSAGES, "input": ""}),
        ({"instruction": "Q1", "input": "ctx", "output": "A1"}, "alpaca", {"messages": QA_MESSAGES, "input": "ctx"}),
        ({"instruction": "Q1", "output": "A1"}, "alpaca", {"messages": QA_MESSAGES, "input": ""}),
        ({"prompt": "Q1", "completion": "A1"}, "prompt_completion", {"messages": QA_MESSAGES, "input": ""}),
        ({"messages": QA_MESSAGES}, "messages", {"messages": QA_MESSAGES, "input": ""}),
        ({"text": "some raw text"}, "text", {"text": "some raw text"}),
    ],
)
def test_each_shape_is_recognised_and_named(tmp_path, row, fmt, expected):
    result = load(write_jsonl(tmp_path / "d.jsonl", [row, row]))
    assert result.chosen_format == fmt
    assert "guessed from the columns" in result.format_reason
    assert result.examples() == [expected, expected]
    assert list(result.rows["source"]) == [f"{tmp_path / 'd.jsonl'}:1", f"{tmp_path / 'd.jsonl'}:2"]


def test_multi_turn_messages_with_system_and_sharegpt_names(tmp_path):
    turns = [{"from": "system", "value": "S"}, {"from": "human", "value": "Q1"}, {"from": "gpt", "value": "A1"},
             {"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]
    result = load(write_jsonl(tmp_path / "d.jsonl", [{"conversations": turns}]))
    assert result.chosen_format == "messages"
    assert [m["role"] for m in result.examples()[0]["messages"]] == ["system", "user", "assistant", "user", "assistant"]


def test_format_set_explicitly_and_fields_mapped(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "Q1", "a": "A1", "other": 3}])
    result = load(path, fmt="qa", fields={"question": "q", "answer": "a"})
    assert result.examples() == [{"messages": QA_MESSAGES, "input": ""}]
    assert result.format_reason == "set in data.format"
    assert load(path, fields={"question": "q", "answer": "a"}).chosen_format == "qa"


def test_system_prompt_is_added_unless_the_row_has_one(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "Q1", "answer": "A1", "system": "Own"},
                                              {"question": "Q1", "answer": "A1"}])
    first, second = load(path, system_prompt="Global").examples()
    assert first["messages"][0] == {"role": "system", "content": "Own"}
    assert second["messages"][0] == {"role": "system", "content": "Global"}


def test_json_array_keeps_the_line_of_each_row(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"question": "Q1", "answer": "A1"},\n  {"question": "Q2",\n   "answer": ""}\n]\n')
    with pytest.raises(TunesmithError, match=r"d\.json:3: empty 'answer'"):
        load(path)


def test_csv_with_quoted_newlines_and_mapped_columns(tmp_path):
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows([["q", "a"], ["Q1", "line one\nline two"], ["Q2", ""]])
    with pytest.raises(TunesmithError, match=r"d\.csv:4: empty 'answer' \(column 'a'\)"):
        load(path, fields={"question": "q", "answer": "a"})
    result = load(path, fields={"question": "q", "answer": "a"}, on_bad_rows="skip")
    assert result.examples()[0]["messages"][1]["content"] == "line one\nline two"


def test_parquet_and_saved_dataset(tmp_path):
    from datasets import Dataset

    rows = Dataset.from_list([{"prompt": "Q1", "completion": "A1"}, {"prompt": "Q2", "completion": None}])
    rows.to_parquet(str(tmp_path / "d.parquet"))
    rows.save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "d.parquet", tmp_path / "saved"):
        with pytest.raises(TunesmithError, match=rf"{path.name}:2: field 'completion' is null"):
            load(path)
        result = load(path, on_bad_rows="skip")
        assert result.chosen_format == "prompt_completion"
        assert result.examples() == [{"messages": QA_MESSAGES, "input": ""}]
    Dataset.from_list([{"prompt": "Q1", "completion": 7}]).to_parquet(str(tmp_path / "n.parquet"))
    with pytest.raises(TunesmithError, match=r"n\.parquet:1: field 'completion' is a number, expected a string"):
        load(tmp_path / "n.parquet")


def test_folder_of_text_files(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first document")
    (folder / "sub" / "b.txt").write_text("second document")
    result = load(folder)
    assert result.chosen_format == "text"
    assert result.examples() == [{"text": "first document"}, {"text": "second document"}]
    assert list(result.rows["source"]) == [f"{folder}/a.txt:1", f"{folder}/sub/b.txt:1"]


BAD_LINES = [
    (b'{"question": "Q", "answer": "A"', "not valid JSON (Expecting ',' delimiter at column 32)"),
    (b'{"question": "Q"}', "missing field 'answer'"),
    (b'{"question": "Q", "answer": 42}', "field 'answer' is a number, expected a string"),
    (b'{"question": "Q", "answer": "  "}', "empty 'answer'"),
    (b'{"question": "Q", "answer": "caf\xe9"}', "not valid UTF-8 (byte 0xe9 at column 33)"),
    (b'["Q", "A"]', "expected an object with fields, got a list"),
]


@pytest.mark.parametrize(("line", "problem"), BAD_LINES)
def test_each_bad_row_stops_prep_with_file_line_and_reason(tmp_path, line, problem):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"question": "Q0", "answer": "A0"}\n' + line + b"\n")
    with pytest.raises(TunesmithError) as err:
        load(path)
    message = str(err.value)
    assert f"{path}:2: {problem}" in message
    assert "1 bad row in" in message and "on_bad_rows: skip" in message


def test_skip_leaves_bad_rows_out_and_lists_every_one(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"question": "Q0", "answer": "A0"}\n' + b"\n".join(line for line, _ in BAD_LINES) + b"\n")
    result = load(path, on_bad_rows="skip")
    assert len(result.rows) == 1
    assert result.rejected_count == len(BAD_LINES)
    assert [(b.source, b.problem) for b in result.rejected] == [
        (f"{path}:{n}", problem) for n, (_, problem) in enumerate(BAD_LINES, 2)]


def test_error_shows_the_first_few_and_the_total(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "Q", "answer": ""}] * 8 + [{"question": "Q", "answer": "A"}])
    with pytest.raises(TunesmithError) as err:
        load(path)
    message = str(err.value)
    assert "8 bad rows" in message and "... and 3 more" in message
    assert f"{path}:5: empty 'answer'" in message and f"{path}:6:" not in message


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([{"role": "user", "content": "Q"}], "ends with the assistant's answer"),
        ([{"role": "user", "content": "Q"}, {"role": "user", "content": "Q"}], "must alternate"),
        ([{"role": "user", "content": "Q"}, {"role": "tool", "content": "A"}], "role 'tool'"),
        ([{"role": "user", "content": "Q"}, {"role": "assistant", "content": ""}], "message 2 (assistant) is empty"),
    ],
)
def test_bad_conversations(tmp_path, rows, problem):
    path = write_jsonl(tmp_path / "d.jsonl", [{"messages": QA_MESSAGES}, {"messages": rows}])
    with pytest.raises(TunesmithError, match="d.jsonl:2: .*" + problem.replace("(", r"\(").replace(")", r"\)")):
        load(path)


def test_unknown_columns_name_what_was_found(tmp_path):
    with pytest.raises(TunesmithError, match="from the columns foo, q.*data.fields"):
        load(write_jsonl(tmp_path / "d.jsonl", [{"q": "x", "foo": "y"}]))


def test_unknown_field_names_and_missing_files(tmp_path):
    with pytest.raises(TunesmithError, match="unknown field"):
        load(write_jsonl(tmp_path / "d.jsonl", [{"q": "x"}]), fields={"query": "q"})
    with pytest.raises(TunesmithError, match="does not exist"):
        load(tmp_path / "nope.jsonl")
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(TunesmithError, match="unsupported file type"):
        load(tmp_path / "d.xlsx")


def test_malformed_json_array_names_the_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n {"question": "Q", "answer": "A"},\n {"question": \n]\n')
    with pytest.raises(TunesmithError, match=r"d\.json:4: not valid JSON"):
        load(path, on_bad_rows="skip")


def test_a_broken_saved_dataset_is_a_user_error(tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "state.json").write_text("not json")
    (folder / "dataset_info.json").write_text("{}")
    with pytest.raises(TunesmithError, match="not a readable saved dataset"):
        load(folder)
