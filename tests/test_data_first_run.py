"""What a newcomer's own data meets in prep: long documents in windows, a few bad rows, a double
template, and the answer-length default."""

import json

import numpy as np
import pytest

from rows_io import write_jsonl
from tunesmith.config import validate_config
from tunesmith.data.answer_length import auto_max_new_tokens, eval_max_new_tokens
from tunesmith.data.load import load_rows
from tunesmith.data.prepare import prepare
from tunesmith.data.split import split_by_document, split_indices
from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import IGNORE_INDEX, Encoder
from tunesmith.errors import TunesmithError

DOC = " ".join(f"word{i % 10} fox {i}" for i in range(120))


def qa_rows(n):
    return [{"question": f"What is code {i}?", "answer": f"Code {i} opens box {i % 7}."} for i in range(n)]


def config(model_dir, run_dir, **data):
    return validate_config({"model": str(model_dir), "run_dir": str(run_dir), "data": data})


@pytest.mark.parametrize(("max_length", "overlap"), [(32, 0), (32, 8), (50, 49), (1000, 0)])
def test_every_token_of_a_long_text_trains_in_exactly_one_window(tokenizer, max_length, overlap):
    encoder = Encoder(tokenizer, resolve_template("chat", tokenizer), max_length, window_overlap=overlap)
    [[whole]] = Encoder(tokenizer, resolve_template("chat", tokenizer), 10**6).encode_rows([{"text": DOC}])
    [windows] = encoder.encode_rows([{"text": DOC}])
    assert all(len(w.input_ids) <= max_length for w in windows)
    trained = [y for w in windows for y in w.labels if y != IGNORE_INDEX]
    assert trained == [y for y in whole.labels if y != IGNORE_INDEX]  # each token once, in order
    stride = max_length - overlap
    for number, window in enumerate(windows):  # each window is the document's tokens from its start
        assert window.input_ids == whole.input_ids[number * stride: number * stride + max_length]
    expected = 1 if len(whole.input_ids) <= max_length else 1 + -(-(len(whole.input_ids) - max_length) // stride)
    assert len(windows) == expected


def test_prep_counts_documents_windows_and_tokens(tiny_model_dir, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.txt").write_text(DOC if i < 2 else "a short note", encoding="utf-8")
    result = prepare(config(tiny_model_dir, tmp_path / "run", path=str(folder), max_length=64, test_size=1))
    docs = result.report["documents"]
    assert docs["documents"] == 4 and docs["split_into_windows"] == 2
    assert docs["windows"] == result.report["train_examples"] + result.report["test_examples"] - 2
    trained = sum(sum(1 for y in labels if y != IGNORE_INDEX) for labels in result.train["labels"])
    assert docs["tokens_trained"] == trained
    assert result.report["checks"]["truncation"]["status"] == "ok"
    assert any("#2" in source for source in list(result.train["source"]) + list(result.test["source"]))
    documents = [{s.split("#")[0] for s in split["source"]} for split in (result.train, result.test)]
    assert len(documents[1]) == 1 and not documents[0] & documents[1]  # test_size=1: one whole document
    assert "split into" in result.summary


def test_windows_of_one_document_stay_on_one_side_of_the_split():
    windows = np.array([0, 1, 2, 3, 0, 1, 2, 0, 0, 1, 2, 3, 4, 0])  # 7 documents, three in windows
    train, test = split_by_document(windows, 2, seed=3)
    document = np.cumsum(windows <= 1) - 1
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(windows)))
    assert len(set(document[test])) == 2 and not set(document[train]) & set(document[test])
    plain = np.zeros(10, dtype=int)
    assert all((a == b).all() for a, b in zip(split_by_document(plain, 0.2, 3), split_indices(10, 0.2, 3),
                                             strict=True))


@pytest.mark.parametrize(("bad", "total", "stops"), [(1, 100, False), (1, 101, False), (2, 101, True), (0, 5, False)])
def test_bad_rows_are_skipped_up_to_one_percent(tmp_path, bad, total, stops):
    rows = qa_rows(total - bad) + [{"question": "", "answer": ""}] * bad
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    if stops:
        with pytest.raises(TunesmithError, match=r"data.max_bad_rows_fraction \(1%\)"):
            load_rows(path, work_dir=tmp_path / "work")
        return
    result = load_rows(path, work_dir=tmp_path / "work")
    assert len(result.rows) == total - bad and result.rejected_count == bad
    assert [b.source for b in result.rejected] == [f"{path}:{n}" for n in range(total - bad + 1, total + 1)]


def test_skipped_bad_rows_are_listed_in_the_report_and_summary(tiny_model_dir, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", qa_rows(120) + [{"question": "", "answer": ""}])
    result = prepare(config(tiny_model_dir, tmp_path / "run", path=str(path)))
    assert result.report["rejected"] == [{"source": f"{path}:121", "problem": "empty 'question'"}]
    assert f"{path}:121: empty 'question'" in result.summary


def test_prompts_with_template_markers_are_flagged_with_the_fix(tiny_model_dir, tmp_path):
    rows = [{"question": f"### Question: what is {i}?\n### Answer:", "answer": f"It is {i}."} for i in range(20)]
    path = write_jsonl(tmp_path / "d.jsonl", rows + qa_rows(10))
    result = prepare(config(tiny_model_dir, tmp_path / "run", path=str(path)))
    check = result.report["checks"]["double_template"]
    marked = sum("### Question:" in json.loads(e)["messages"][0]["content"] for e in result.train["example"])
    assert check["status"] == "warning" and check["count"] == marked and 15 <= marked <= 20
    assert f"'### Question:' in {marked}" in check["message"] and "data.template: none" in check["message"]
    assert f"WARNING double_template  {marked} of 27 training prompts" in result.summary
    clean = write_jsonl(tmp_path / "c.jsonl", qa_rows(30))
    assert prepare(config(tiny_model_dir, tmp_path / "c", path=str(clean))).report["checks"]["double_template"][
        "status"] == "ok"


def test_the_chosen_templates_own_markers_are_flagged(tiny_model_dir, tmp_path):
    rows = [{"question": f"Question {i}\nReply>>", "answer": "ok"} for i in range(10)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    report = prepare(config(tiny_model_dir, tmp_path / "run", path=str(path), template="{prompt}\nReply>> ")).report
    assert report["checks"]["double_template"]["status"] == "warning"
    assert "'Reply>>' in 9" in report["checks"]["double_template"]["message"]


@pytest.mark.parametrize(("lengths", "expected"), [
    ([40] * 20, 58),  # 40 x 1.25 + 8
    (list(range(1, 101)), 128),  # p95 = 95.05 -> 96 x 1.25 + 8
    ([10] * 20, 32),  # the floor
    ([1000] * 20, 512),  # the cap
])
def test_answer_length_default_is_p95_with_headroom_within_bounds(lengths, expected):
    found = auto_max_new_tokens(lengths)
    assert found["max_new_tokens"] == expected and found["answers"] == len(lengths)


def test_answer_length_is_recorded_by_prep_and_read_by_eval(tiny_model_dir, tmp_path):
    long = [{"question": f"Tell me about {i}.", "answer": " ".join(["fox"] * 60 + [str(i)])} for i in range(20)]
    result = prepare(config(tiny_model_dir, tmp_path / "run", path=str(write_jsonl(tmp_path / "d.jsonl", long))))
    found = result.report["answer_length"]
    response = [sum(1 for y in labels if y != IGNORE_INDEX) for labels in result.test["labels"]]
    assert found == auto_max_new_tokens(response) and found["max_new_tokens"] > 64
    assert f"eval.max_new_tokens: auto = {found['max_new_tokens']}" in result.summary
    data_dir = tmp_path / "run" / "data"
    assert eval_max_new_tokens("auto", data_dir, result.test)[0] == found["max_new_tokens"]
    assert eval_max_new_tokens(16, data_dir, result.test) == (16, "eval.max_new_tokens")
    (data_dir / "data_report.json").unlink()  # prepared before the report had it: computed from the labels
    assert eval_max_new_tokens("auto", data_dir, result.test)[0] == found["max_new_tokens"]
