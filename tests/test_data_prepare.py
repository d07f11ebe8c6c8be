"""The prep stage end to end on a tiny model folder: files, report, cache, checks, errors."""

import json
import shutil

import pytest

from rows_io import write_jsonl
from tunesmith.config import validate_config
from tunesmith.data.prepare import ensure_prepared, load_prepared, prepare
from tunesmith.errors import TunesmithError

REPORT_KEYS = {"rows_loaded", "rows_rejected", "train_examples", "test_examples", "checks", "lengths", "truncated",
               "padding_waste", "trained_token_fraction", "duplicates", "fingerprint", "seconds", "peak_rss_mb"}
CHECKS = {"eos_in_labels", "pad_eos", "double_bos", "truncation", "leakage", "empty_or_masked", "template",
          "double_template"}


def qa_rows(n, start=0):
    question = "What is {0} plus {0}? Show the sum of the number {0} twice."
    return [{"question": question.format(i), "answer": f"{i} + {i} = {2 * i}"} for i in range(start, start + n)]


def make_config(model_dir, run_dir, **data):
    return validate_config({"model": str(model_dir), "run_dir": str(run_dir), "train": {"batch_size": 4},
                            "data": {"test_size": 0.2, **data}})


@pytest.fixture
def qa_file(tmp_path):
    return write_jsonl(tmp_path / "qa.jsonl", qa_rows(30))


def test_prepare_writes_what_later_stages_read(tiny_model_dir, tmp_path, qa_file):
    result = prepare(make_config(tiny_model_dir, tmp_path / "run", path=str(qa_file)), show=2)
    data_dir = tmp_path / "run" / "data"
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "data_report.json", "fingerprint.json", "template.json", "test", "train"]
    assert not result.cached
    assert REPORT_KEYS <= set(result.report) and set(result.report["checks"]) == CHECKS
    assert {c["status"] for c in result.report["checks"].values()} == {"ok"}
    counts = [result.report[k] for k in ("rows_loaded", "train_examples", "test_examples")]
    assert counts == [30, 24, 6]
    assert json.loads((data_dir / "data_report.json").read_text()) == result.report
    assert result.train.column_names == ["input_ids", "labels", "example", "source"]
    example = json.loads(result.test[0]["example"])
    assert example["messages"][1]["role"] == "assistant" and result.test[0]["source"].startswith(str(qa_file))
    assert result.template.name == "chat" and load_prepared(data_dir).template == result.template
    assert 0 < result.report["trained_token_fraction"] < 1
    for line in ("rows: 30 loaded, 0 rejected → 24 train, 6 test", "checks:", "padding at batch 4", "── example 2 ·"):
        assert line in result.summary
    assert "── example 3 ·" not in result.summary and "masked │" in result.summary and "train  │" in result.summary


def test_cache_is_reused_and_invalidated_by_data_settings_and_tokenizer(tiny_model_dir, tmp_path, qa_file):
    config = make_config(tiny_model_dir, tmp_path / "run", path=str(qa_file), template="qa")
    first = prepare(config)
    assert prepare(config).cached
    assert not prepare(make_config(tiny_model_dir, tmp_path / "run", path=str(qa_file), template="qa",
                                   max_length=64)).cached
    other_model = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other_model)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(other_model)
    tokenizer.add_tokens(["plus"])
    tokenizer.save_pretrained(other_model)
    retokenized = prepare(make_config(other_model, tmp_path / "run", path=str(qa_file), template="qa"))
    assert not retokenized.cached
    plus = tokenizer.convert_tokens_to_ids("plus")
    assert plus in retokenized.train[0]["input_ids"] and plus not in first.train[0]["input_ids"]
    write_jsonl(qa_file, qa_rows(30, start=1))
    assert not prepare(make_config(other_model, tmp_path / "run", path=str(qa_file), template="qa")).cached


def test_ensure_prepared_loads_or_prepares(tiny_model_dir, tmp_path, qa_file):
    with pytest.raises(TunesmithError, match="run tunesmith prep"):
        load_prepared(tmp_path / "run" / "data")
    config = make_config(tiny_model_dir, tmp_path / "run", path=str(qa_file))
    prepared = ensure_prepared(config)
    assert len(prepared.train) == 24 and len(prepared.test) == 6
    again = ensure_prepared(config)
    assert list(again.train["source"]) == list(prepared.train["source"])


def test_split_is_the_same_in_two_runs(tiny_model_dir, tmp_path, qa_file):
    a = prepare(make_config(tiny_model_dir, tmp_path / "a", path=str(qa_file)))
    b = prepare(make_config(tiny_model_dir, tmp_path / "b", path=str(qa_file)))
    assert list(a.test["source"]) == list(b.test["source"])
    assert list(a.train["input_ids"]) == list(b.train["input_ids"])


def test_crafted_bad_dataset_fires_the_checks(tiny_model_dir, tmp_path):
    rows = qa_rows(10) + [{"question": "<|im_start|><|im_start|>hi", "answer": "x " * 80},  # EOS cut off
                          {"question": "spider " * 60, "answer": "eight"}]  # answer cut off entirely
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", qa_rows(2) + [{"question": "WHAT is 5 plus 5; show the sum of "
                                                                "the number 5 twice", "answer": "10"}])
    config = make_config(tiny_model_dir, tmp_path / "run", path=str(train), test_path=str(test), template="none",
                         max_length=40)
    report = prepare(config).report
    checks = {name: check["status"] for name, check in report["checks"].items()}
    assert checks == {"eos_in_labels": "warning", "pad_eos": "ok", "double_bos": "warning", "truncation": "warning",
                      "leakage": "warning", "empty_or_masked": "warning", "template": "warning",
                      "double_template": "ok"}
    assert report["duplicates"]["test_in_train_exact"] == 2 and report["duplicates"]["test_in_train_near"] == 1
    assert report["truncated"]["whole_response_lost"] >= 1 and report["left_out_examples"] >= 1
    assert report["checks"]["double_bos"]["sources"] == [f"{train}:11"]


def test_meaningless_data_is_an_error_with_a_report_but_no_fingerprint(tiny_model_dir, tmp_path, qa_file):
    config = make_config(tiny_model_dir, tmp_path / "run", path=str(qa_file), max_length=8)
    with pytest.raises(TunesmithError, match="meaningless.*truncation"):
        prepare(config)
    data_dir = tmp_path / "run" / "data"
    report = json.loads((data_dir / "data_report.json").read_text())
    assert report["checks"]["truncation"]["status"] == "error"
    assert not (data_dir / "fingerprint.json").exists()


def test_packing_and_skipped_rows(tiny_model_dir, tmp_path):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, qa_rows(40))
    path.write_text(path.read_text() + '{"question": "Q"}\nnot json\n')
    result = prepare(make_config(tiny_model_dir, tmp_path / "run", path=str(path), packing=True, max_length=512,
                                 on_bad_rows="skip"), show=1)
    assert result.report["rows_rejected"] == 2
    assert [r["source"] for r in result.report["rejected"]] == [f"{path}:41", f"{path}:42"]
    assert result.train.column_names == ["input_ids", "labels", "position_ids", "example", "source"]
    assert len(result.train) < result.report["train_examples"] == 32
    row = result.train[0]
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
    assert len(starts) == len(row["source"].split(";")) > 1
    assert all(row["labels"][s] == -100 for s in starts)
    assert result.test.column_names == ["input_ids", "labels", "example", "source"]
    assert "(packed row, example 1)" in result.summary
    # packed rows keep their examples' canonical rows, so the few-shot baseline can draw from them
    from tunesmith.evaluate.examples import examples_from_rows

    shots = examples_from_rows(result.train)
    assert len(shots) == 32 and len({shot.source for shot in shots}) == 32
    assert all(shot.source.startswith(f"{path}:") and shot.reference for shot in shots)


@pytest.mark.slow
def test_several_processes_give_the_same_result(tiny_model_dir, tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", qa_rows(2000))
    one = prepare(make_config(tiny_model_dir, tmp_path / "one", path=str(path)))
    two = prepare(make_config(tiny_model_dir, tmp_path / "two", path=str(path), num_proc=2))
    assert two.cached is False and list(one.train["input_ids"]) == list(two.train["input_ids"])
    assert one.report["fingerprint"] == two.report["fingerprint"]


def test_an_example_the_chat_template_refuses_is_named(tokenizer):
    from tunesmith.data.build import RowMap
    from tunesmith.data.templates import Template
    from tunesmith.data.tokenize import Encoder

    refusing = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
                "{% for m in messages %}{{ m['content'] }}{% endfor %}")
    row_map = RowMap(Encoder(tokenizer, Template("chat", chat_template=refusing), 64))
    good = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "input": ""}
    bad = {**good, "messages": [{"role": "system", "content": "S"}, *good["messages"]]}
    batch = {"example": [json.dumps(good), json.dumps(bad)], "source": ["d.jsonl:1", "d.jsonl:2"]}
    with pytest.raises(TunesmithError, match="d.jsonl:2: the model's chat template refused .*no system role"):
        row_map(batch)


@pytest.mark.integration
def test_embedded_tokenizer_prep_of_the_bundled_example(tmp_path):
    """SmolLM2: pad IS eos and its chat template writes BOS; EOS must stay trained, BOS appear once."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "lumen_faq.jsonl"
    config = validate_config({"run_dir": str(tmp_path / "run"), "data": {"path": str(example)}})
    result = prepare(config, show=1)
    report = result.report
    assert (report["template"], report["format"]) == ("chat", "qa")
    assert {name: c["status"] for name, c in report["checks"].items()} == dict.fromkeys(CHECKS, "ok")
    assert report["train_examples"] + report["test_examples"] == report["rows_loaded"] == 321
    row = result.train[0]
    trained = [i for i, label in enumerate(row["labels"]) if label != -100]
    prompt = row["input_ids"][: trained[0]]
    assert prompt[0] == 1 and prompt.count(1) == 3  # <|im_start|> opens system, user and assistant, once each
    assert row["input_ids"][trained[-1] - 1] == 2 == row["labels"][trained[-1] - 1]  # <|im_end|> (EOS, = pad) trained
    assert "<|im_start|>assistant↵" in result.summary and "'<|im_end|>'=EOS" in result.summary
