"""Log-likelihood scoring: known preferences on a scripted model, padding invariance, the loader."""

import json
import math

import pytest
import torch

from test_eval_models import script, scripted_model, successor_logprob
from tiny import tiny_model
from tunesmith.data.templates import resolve_template
from tunesmith.errors import TunesmithError
from tunesmith.evaluate.choice import ChoiceRow, load_choices, score_choices
from tunesmith.evaluate.loglik import continuation_logprobs

SCALE = 0.01  # soft preferences: log p(scripted successor) and log p(other) are both finite


@pytest.fixture
def scripted(tokenizer):
    return scripted_model(tokenizer, script(tokenizer, "Paris is the capital of France."), scale=SCALE)


def test_logprobs_match_the_known_preferences(tokenizer, scripted):
    hit, miss = successor_logprob(tokenizer, SCALE)
    rows = [
        ChoiceRow("Paris is the capital of", [" France.", " London"], 0),
        ChoiceRow("Paris is the capital of", ["x", " France."], 1),  # raw prefers 1 byte, per byte " France."
    ]
    result = score_choices(scripted, tokenizer, resolve_template("none", tokenizer), rows)
    first, second = result["examples"]
    assert first["logprobs"] == pytest.approx([3 * hit, 7 * miss], abs=1e-3)  # " London" is 7 tokens
    assert second["logprobs"] == pytest.approx([miss, 3 * hit], abs=1e-3)
    assert (first["pred"], first["pred_norm"]) == (0, 0)
    assert (second["pred"], second["pred_norm"]) == (0, 1)  # length normalisation flips the choice
    assert result["accuracy"] == 0.5 and result["accuracy_norm"] == 1.0 and result["n"] == 2


def test_batched_scores_equal_a_plain_forward(tokenizer):
    model = tiny_model(tokenizer).eval()
    pairs = [
        (tokenizer("What is the capital of France?").input_ids, tokenizer(" Paris").input_ids),
        (tokenizer("hello").input_ids, tokenizer(" world 1 2 3").input_ids),
        (tokenizer("The quick brown fox jumps").input_ids, tokenizer(" over").input_ids),
    ]
    batched = continuation_logprobs(model, pairs, pad_id=tokenizer.pad_token_id, batch_size=3)
    for (context, answer), (total, count) in zip(pairs, batched, strict=True):
        with torch.no_grad():
            logprobs = model(torch.tensor([context + answer])).logits[0].log_softmax(-1)
        expected = sum(logprobs[len(context) - 1 + k, token].item() for k, token in enumerate(answer))
        assert count == len(answer)
        assert total == pytest.approx(expected, abs=1e-4)


def test_empty_continuation_and_empty_context(tokenizer):
    model = tiny_model(tokenizer).eval()
    assert continuation_logprobs(model, [([5, 6], [])], pad_id=0) == [(0.0, 0)]
    with pytest.raises(ValueError, match="non-empty context"):
        continuation_logprobs(model, [([], [5])], pad_id=0)


def write(tmp_path, rows):
    path = tmp_path / "choices.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_loader_reads_rows_with_their_source(tmp_path):
    path = write(tmp_path, [{"question": "2+2?", "choices": ["3", "4"], "answer": 1}, ""])
    [row] = load_choices(path)
    assert row == ChoiceRow("2+2?", ["3", "4"], 1, f"{path}:1")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"question": "", "choices": ["a", "b"], "answer": 0}, "'question'"),
        ({"question": "q", "choices": ["a"], "answer": 0}, "at least two"),
        ({"question": "q", "choices": ["a", "b"], "answer": 2}, r"0\.\.1"),
        ({"question": "q", "choices": ["a", "b"], "answer": True}, "'answer'"),
    ],
)
def test_loader_names_file_line_and_fix(tmp_path, bad, message):
    path = write(tmp_path, [{"question": "ok", "choices": ["a", "b"], "answer": 0}, bad])
    with pytest.raises(TunesmithError, match=message) as err:
        load_choices(path)
    assert f"{path}:2" in str(err.value)


def test_loader_missing_file(tmp_path):
    with pytest.raises(TunesmithError, match="eval.choices_path.*does not exist"):
        load_choices(tmp_path / "nope.jsonl")


def test_perfect_model_scores_one(tokenizer):
    model = scripted_model(tokenizer, script(tokenizer, "Paris is the capital of France."))
    rows = [ChoiceRow("Paris is the", [" capital", " London"], 0), ChoiceRow("Paris is", [" London", " the"], 1)]
    result = score_choices(model, tokenizer, resolve_template("none", tokenizer), rows, batch_size=1)
    assert result["accuracy"] == 1.0 and result["accuracy_norm"] == 1.0
    assert all(math.isfinite(lp) for e in result["examples"] for lp in e["logprobs"])
