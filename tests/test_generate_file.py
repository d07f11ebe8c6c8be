"""`tunesmith generate`: one output line per input row, in order; bad rows reported by line, never fatal."""

from __future__ import annotations

import json

import pytest

from test_serve_support import save_lively_model, tiny_loaded
from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine.decoding import Sequence, generate, stop_token_ids
from tunesmith.errors import TunesmithError
from tunesmith.use.generate_file import generate_file, generate_rows
from tunesmith.use.rows import read_prompt_rows

JSONL_LINES = [
    '{"prompt": "What is the capital of France?"}',
    '{"question": "hello world", "answer": "ignored"',  # 2: truncated JSON
    "",  # blank lines are not rows
    '{"instruction": "Say 1 2 3", "input": "0 1", "system": "Be brief."}',
    '{"answer": "no prompt here"}',  # 5
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}',
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "x"}]}',  # 7: not alternating
    '["a", "list"]',  # 8: not an object
    '{"text": "The quick brown fox"}',
    '{"prompt": "' + "9 " * 600 + '"}',  # 10: longer than the context
]


@pytest.fixture(scope="module")
def loaded():
    return tiny_loaded()


def expected(loaded, messages=None, text=None, input_text="", max_new_tokens=6) -> str:
    if text is not None:
        ids = loaded.tokenizer(text).input_ids
    else:
        ids = encode_prompt(loaded.tokenizer, loaded.template, messages, input_text)
    stops = loaded.template.stop_strings
    stop_ids = stop_token_ids(loaded.model, loaded.tokenizer, stops)
    [answer] = generate(loaded.model, loaded.tokenizer, [Sequence(ids, max_new_tokens, stop_strings=stops)], stop_ids)
    return answer.text


def run(loaded, path, out, batch_size=3):
    result = generate_rows(loaded, read_prompt_rows(path), out, max_new_tokens=6, batch_size=batch_size,
                           temperature=0.0, top_p=1.0)
    return result, [json.loads(line) for line in out.read_text().splitlines()]


def test_jsonl_with_bad_rows(loaded, tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(JSONL_LINES) + "\n")
    result, records = run(loaded, path, tmp_path / "out.jsonl")

    assert [r["line"] for r in records] == [1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert (result.rows, result.generated) == (9, 4)
    assert [e.split(": ", 1)[0] for e in result.errors] == [f"{path}:{n}" for n in (2, 5, 7, 8, 10)]
    errors = {r["line"]: r["error"] for r in records if r["generation"] is None}
    assert "not valid JSON" in errors[2] and "no prompt" in errors[5] and "alternate" in errors[7]
    assert "got list" in errors[8] and "context" in errors[10]

    answers = {r["line"]: r["generation"] for r in records if r["generation"] is not None}
    assert answers[1] == expected(loaded, [{"role": "user", "content": "What is the capital of France?"}])
    system_and_user = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say 1 2 3"}]
    assert answers[4] == expected(loaded, system_and_user, input_text="0 1")
    assert answers[6] == expected(loaded, [{"role": "user", "content": "hi"}])  # reference answer dropped
    assert answers[9] == expected(loaded, text="The quick brown fox")
    first = records[0]
    assert first["input"] == {"prompt": "What is the capital of France?"}
    assert first["finish_reason"] in ("stop", "length") and first["new_tokens"] <= 6 and first["prompt_tokens"] > 0


def test_batch_size_does_not_change_answers(loaded, tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(JSONL_LINES))
    _, one = run(loaded, path, tmp_path / "a.jsonl", batch_size=1)
    _, many = run(loaded, path, tmp_path / "b.jsonl", batch_size=16)
    assert one == many


def test_csv_rows_with_wrong_field_counts(loaded, tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text('id,prompt\n1,hello\n2,"a, quoted\nmultiline prompt"\n3,too,many\n4\n5,world\n')
    result, records = run(loaded, path, tmp_path / "out.jsonl")
    assert [r["line"] for r in records] == [2, 3, 5, 6, 7]
    assert "3 values for 2 columns" in records[2]["error"] and "1 values for 2 columns" in records[3]["error"]
    assert records[1]["generation"] == expected(loaded, [{"role": "user", "content": "a, quoted\nmultiline prompt"}])
    assert records[4]["input"] == {"id": "5", "prompt": "world"}
    assert result.generated == 3


def test_unusable_files_are_user_errors(tmp_path):
    with pytest.raises(TunesmithError, match="does not exist"):
        read_prompt_rows(tmp_path / "missing.jsonl")
    (tmp_path / "p.xlsx").write_bytes(b"PK")
    with pytest.raises(TunesmithError, match="--input .*unsupported file type"):
        read_prompt_rows(tmp_path / "p.xlsx")
    (tmp_path / "p.csv").write_text("id,answer\n1,x\n2,y\n")
    with pytest.raises(TunesmithError, match=r"no row has a prompt; found the fields \['answer', 'id'\]"):
        read_prompt_rows(tmp_path / "p.csv")


def test_parquet_and_text_folders_as_prep_reads_them(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"question": ["hello", ""], "answer": ["a", "b"]}), tmp_path / "q.parquet")
    rows = read_prompt_rows(tmp_path / "q.parquet")
    assert [r.messages for r in rows] == [[{"role": "user", "content": "hello"}], None]
    assert rows[1].source == f"{tmp_path / 'q.parquet'}:2" and "no prompt" in rows[1].error
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("The quick brown")
    assert [r.text for r in read_prompt_rows(tmp_path / "texts")] == ["The quick brown"]


def test_sharegpt_conversations(tmp_path):
    path = tmp_path / "share.jsonl"
    turns = [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]
    path.write_text(json.dumps({"conversations": turns}) + "\n")
    [row] = read_prompt_rows(path)
    assert row.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


def test_generate_file_end_to_end(tmp_path):
    model_dir = save_lively_model(tmp_path / "model")
    path = tmp_path / "in.json"
    rows = [{"prompt": "hello"}, {"nothing": 1}, {"question": "What is the capital?"}]
    path.write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")  # rows on lines 2-4
    out = tmp_path / "sub" / "out.jsonl"
    result = generate_file(str(model_dir), path, out, max_new_tokens=4, batch_size=2, temperature=0.0, top_p=1.0,
                           show_progress=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in records] == [2, 3, 4] and result.output_path == out
    assert records[1]["generation"] is None and result.errors == [f"{path}:3: " + records[1]["error"]]
    assert result.summary().splitlines() == [f"wrote 3 lines to {out}: 2 generated, 1 rows skipped",
                                             f"  {path}:3: {records[1]['error']}"]
    assert all(r["new_tokens"] <= 4 for r in (records[0], records[2]))
