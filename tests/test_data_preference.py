"""Preference data: both TRL shapes recognised, the rejected side tokenized beside the chosen, checks."""


import pytest

from rows_io import write_jsonl
from tunesmith.config import validate_config
from tunesmith.data.load import load_rows
from tunesmith.data.prepare import prepare
from tunesmith.errors import TunesmithError

PROMPT = "What is {0} plus {0}?"


def plain_rows(n):
    return [{"prompt": PROMPT.format(i), "chosen": f"{2 * i}", "rejected": f"{2 * i + 1} maybe"} for i in range(n)]


def conversational_rows(n):
    return [{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT.format(i)}],
             "chosen": [{"role": "assistant", "content": f"{2 * i}"}],
             "rejected": [{"role": "assistant", "content": f"{2 * i + 1} maybe"}]} for i in range(n)]


def implicit_rows(n):
    return [{"chosen": [{"role": "user", "content": PROMPT.format(i)}, {"role": "assistant", "content": f"{2 * i}"}],
             "rejected": [{"role": "user", "content": PROMPT.format(i)}, {"role": "assistant", "content": "no"}]}
            for i in range(n)]


@pytest.mark.parametrize("rows, system", [(plain_rows, None), (conversational_rows, "Be brief."),
                                          (implicit_rows, None)], ids=["plain", "conversational", "implicit"])
def test_each_shape_is_recognised_and_canonicalised(tmp_path, rows, system):
    loaded = load_rows(write_jsonl(tmp_path / "p.jsonl", rows(3)))
    assert loaded.chosen_format == "preference"
    example = loaded.examples()[1]
    assert example["messages"][-1] == {"role": "assistant", "content": "2"}
    assert example["messages"][-2] == {"role": "user", "content": PROMPT.format(1)}
    assert (example["messages"][0]["content"] == system) == (system is not None)
    assert example["rejected"] in ("3 maybe", "no")


def test_bad_pairs_are_reported_with_their_line(tmp_path):
    rows = plain_rows(3)
    rows[1]["rejected"] = " "
    rows[2]["chosen"] = [{"role": "user", "content": "hi"}]
    with pytest.raises(TunesmithError) as err:
        load_rows(write_jsonl(tmp_path / "p.jsonl", rows))
    assert "p.jsonl:2: empty 'rejected'" in str(err.value)
    assert "p.jsonl:3: field 'chosen' must hold one assistant message" in str(err.value)


def test_prepare_tokenizes_both_sides_with_the_prompt_masked(tiny_model_dir, tmp_path):
    rows = plain_rows(20)
    for row in rows[:10]:
        row["rejected"] = row["chosen"]  # nothing to prefer
    config = validate_config({"model": str(tiny_model_dir), "run_dir": str(tmp_path / "run"),
                              "data": {"path": str(write_jsonl(tmp_path / "p.jsonl", rows)), "test_size": 4}})
    result = prepare(config, show=0)
    assert set(result.train.column_names) >= {"input_ids", "labels", "rejected_input_ids", "rejected_labels"}
    row = result.train[0]
    prompt = next(i for i, y in enumerate(row["labels"]) if y != -100)  # first trained position
    assert row["input_ids"][:prompt] == row["rejected_input_ids"][:prompt]  # the same prompt, masked on both sides
    assert all(y == -100 for y in row["rejected_labels"][:prompt]) and row["rejected_labels"][prompt] != -100
    checks = result.report["checks"]
    equal = checks["chosen_equals_rejected"]
    assert 6 <= equal["count"] <= 10 and equal["status"] == "warning"
    assert checks["pair_truncated_to_same"]["status"] == "ok"
    bias = checks["length_bias"]  # half the pairs are equal: no side is longer in most
    assert bias["status"] == "ok" and "the shorter in" in bias["message"]


def test_pairs_cut_to_the_same_prefix_are_flagged(tiny_model_dir, tmp_path):
    rows = [{"prompt": f"hello world {i}", "chosen": "the same start " * 20 + "A",
             "rejected": "the same start " * 20 + "B and then longer"} for i in range(10)]
    config = validate_config({"model": str(tiny_model_dir), "run_dir": str(tmp_path / "run"),
                              "data": {"path": str(write_jsonl(tmp_path / "p.jsonl", rows)), "test_size": 2,
                                       "max_length": 60}})
    checks = prepare(config, show=0).report["checks"]
    assert checks["pair_truncated_to_same"]["count"] == 8 and checks["pair_truncated_to_same"]["status"] == "warning"
    assert checks["length_bias"]["status"] == "warning" and "the shorter in 100%" in checks["length_bias"]["message"]
