"""Row shapes users bring: TRL conversational, content parts, per-message weight, a saved DatasetDict."""

import json

import pytest

from rows_io import load, write_jsonl
from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import IGNORE_INDEX, Encoder
from tunesmith.errors import TunesmithError

QA = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"}]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"prompt": [{"role": "user", "content": "Q1"}], "completion": [{"role": "assistant", "content": "A1"}]},
         QA),
        ({"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"}], "completion": "A1"},
         [{"role": "system", "content": "S"}, *QA]),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "Q"}, {"type": "text", "text": "1"}]},
                       {"role": "assistant", "content": [{"type": "text", "text": "A1"}]}]}, QA),
        ({"messages": [{"role": "user", "content": "Q0"}, {"role": "assistant", "content": "A0", "weight": 0},
                       {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1", "weight": 1}]},
         [{"role": "user", "content": "Q0"}, {"role": "assistant", "content": "A0", "weight": 0}, *QA]),
    ],
    ids=["trl-conversational", "trl-with-string-completion", "content-parts", "openai-weight"],
)
def test_each_shape_becomes_the_canonical_conversation(tmp_path, row, expected):
    result = load(write_jsonl(tmp_path / "d.jsonl", [row]))
    assert result.examples() == [{"messages": expected, "input": ""}]


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
          {"role": "assistant", "content": "A"}], "message 1 (user) has a part of type 'image_url'; tunesmith trains "
                                                  "on text only"),
        ([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "weight": 0}],
         "every assistant message has weight 0"),
        ([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "weight": 0.5}],
         "message 2 (assistant) has weight 0.5; expected 0 (not trained) or 1"),
    ],
)
def test_refused_shapes_say_why(tmp_path, messages, problem):
    path = write_jsonl(tmp_path / "d.jsonl", [{"messages": QA}, {"messages": messages}])
    with pytest.raises(TunesmithError) as err:
        load(path, on_bad_rows="error")
    assert f"{path}:2: {problem}" in str(err.value)


@pytest.mark.parametrize("spec", ["chat", "qa"])
def test_weight_0_turns_are_context_not_trained(tokenizer, spec):
    encoder = Encoder(tokenizer, resolve_template(spec, tokenizer), 512)
    messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "world", "weight": 0},
                {"role": "user", "content": "Paris"}, {"role": "assistant", "content": "France"}]
    encoded = encoder.encode({"messages": messages, "input": ""})
    trained = tokenizer.decode([y for y in encoded.labels if y != IGNORE_INDEX])
    assert "France" in trained and "world" not in trained
    assert "world" in tokenizer.decode(encoded.input_ids)
    unweighted = encoder.encode({"messages": [{k: v for k, v in m.items() if k != "weight"} for m in messages]})
    assert "world" in tokenizer.decode([y for y in unweighted.labels if y != IGNORE_INDEX])


def test_a_saved_dataset_dict_keeps_its_test_split(tiny_model_dir, tmp_path):
    from datasets import Dataset, DatasetDict

    from tunesmith.config import validate_config
    from tunesmith.data.prepare import prepare

    rows = [{"question": f"What is code {i}?", "answer": f"Code {i} is box {i % 5}."} for i in range(14)]
    DatasetDict({"train": Dataset.from_list(rows[:10]), "test": Dataset.from_list(rows[10:])}).save_to_disk(
        str(tmp_path / "saved"))
    config = validate_config({"model": str(tiny_model_dir), "run_dir": str(tmp_path / "run"),
                              "data": {"path": str(tmp_path / "saved")}})
    result = prepare(config)
    assert result.report["test_source"].startswith("the 'test' split of the saved dataset")
    assert (result.report["train_examples"], result.report["test_examples"]) == (10, 4)
    assert [json.loads(e)["messages"][0]["content"] for e in result.test["example"]] == [
        f"What is code {i}?" for i in range(10, 14)]
    assert result.test[0]["source"] == f"{tmp_path / 'saved'}[test]:1"
    assert "test = the 'test' split of the saved dataset" in result.summary


def test_every_example_row_in_the_readme_table_loads(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### Accepted row shapes"):readme.index("### Python API")]
    rows = [json.loads(cell) for cell in re.findall(r"^\| [^|]+ \| `(\{.*\})` \|$", table, re.M)]
    assert len(rows) == 9
    formats = []
    for number, row in enumerate(rows):
        result = load(write_jsonl(tmp_path / f"{number}.jsonl", [row]), on_bad_rows="error")
        [example] = result.examples()
        assert example.get("text") or example["messages"][-1]["role"] == "assistant"
        formats.append(result.chosen_format)
    assert formats == ["qa", "alpaca", "prompt_completion", "prompt_completion", "messages", "messages", "messages",
                       "messages", "text"]
