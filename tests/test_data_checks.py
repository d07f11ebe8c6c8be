"""Each check fires on crafted bad data and stays quiet on good data."""

import numpy as np
import pytest

from tunesmith.data import checks as ck
from tunesmith.data.dedup import find_leakage, prompt_keys
from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import IGNORE_INDEX

M = IGNORE_INDEX


def sources(positions):
    return [f"d.jsonl:{p + 1}" for p in positions]


def keys(texts):
    columns = prompt_keys(texts)
    return {k: np.asarray(v, dtype=np.uint32 if k == "minhash" else np.int64) for k, v in columns.items()}


def test_example_flags_on_good_and_bad_examples():
    good = ck.example_flags([1, 5, 6, 2], [M, M, 6, 2], bos_id=1, eos_id=2)
    assert good == {"eos_in_labels": True, "double_bos": False, "eos_masked": False}
    bad = ck.example_flags([1, 1, 5, 6, 2], [M, M, M, 6, M], bos_id=1, eos_id=2)
    assert bad == {"eos_in_labels": False, "double_bos": True, "eos_masked": True}
    prompt_eos = ck.example_flags([5, 2, 6, 2], [M, M, 6, 2], bos_id=1, eos_id=2)  # EOS inside the prompt: fine
    assert prompt_eos["eos_masked"] is False


def test_eos_missing_from_labels():
    assert ck.check_eos(np.array([True, True]), "</s>", sources).status == "ok"
    check = ck.check_eos(np.array([True, False, False]), "</s>", sources)
    assert (check.status, check.count, check.sources) == ("warning", 2, ["d.jsonl:2", "d.jsonl:3"])
    assert ck.check_eos(np.array([False]), None, sources).status == "warning"


def test_pad_equal_to_eos_masking_eos():
    sample = [{"input_ids": [1, 5, 2], "labels": [M, 5, 2]}, {"input_ids": [1, 2], "labels": [M, 2]}]
    quiet = ck.check_pad_eos(2, 2, np.array([False, False]), sample, sources)
    assert quiet.status == "ok" and "padding is masked by length" in quiet.message
    assert ck.check_pad_eos(0, 2, np.array([False]), sample, sources).status == "ok"
    fired = ck.check_pad_eos(2, 2, np.array([False, True]), sample, sources)
    assert (fired.status, fired.count, fired.sources) == ("warning", 1, ["d.jsonl:2"])


def test_double_bos():
    assert ck.check_double_bos(np.array([False, False]), "<s>", sources).status == "ok"
    fired = ck.check_double_bos(np.array([False, True]), "<s>", sources)
    assert (fired.status, fired.count) == ("warning", 1)


def test_truncation_losing_whole_and_partial_answers():
    assert ck.check_truncation(np.array([5, 5]), np.array([5, 5]), 64, sources).status == "ok"
    partial = ck.check_truncation(np.array([5, 5]), np.array([5, 2]), 64, sources)
    assert partial.status == "ok" and "1 lose part of it" in partial.message
    lost = ck.check_truncation(np.array([5, 5, 5]), np.array([0, 2, 5]), 64, sources)
    assert (lost.status, lost.count, lost.sources) == ("warning", 1, ["d.jsonl:1"])
    assert "1 lose part of it" in lost.message
    assert ck.check_truncation(np.array([5, 5]), np.array([0, 0]), 64, sources).status == "error"


def test_empty_or_fully_masked_examples():
    assert ck.check_masked(np.array([4, 4]), np.array([2, 1]), sources).status == "ok"
    some = ck.check_masked(np.array([4, 0, 4]), np.array([2, 0, 0]), sources)
    assert (some.status, some.count) == ("warning", 2)
    assert ck.check_masked(np.array([4, 4]), np.array([0, 0]), sources).status == "error"


def test_leakage_exact_and_near_duplicates():
    train = ["What is the capital of France?", "How many legs does a spider have?",
             "Natalia sold clips to 48 of her friends in April and then half as many in May. How many in all?"]
    test = ["What is the capital of France?",  # verbatim
            "how many legs does a SPIDER have",  # same words
            "Natalia sold clips to 48 of her friends in April and then half as many in June. How many in all?",
            "Name a prime number larger than ten."]  # unrelated
    texts = {"train": train, "test": test}
    leakage = find_leakage(keys(train), keys(test), lambda p: [train[i] for i in p], lambda p: [test[i] for i in p])
    assert leakage.exact.tolist() == [0]
    assert leakage.near.tolist() == [1, 2]
    assert leakage.near_pairs[1][:2] == (2, 2) and 0.7 <= leakage.near_pairs[1][2] < 1
    check = ck.check_leakage(leakage, len(texts["test"]), sources)
    assert (check.status, check.count) == ("warning", 3) and "1 of 4 test prompts" in check.message


def test_no_leakage_on_distinct_prompts():
    train, test = ["What is the capital of France?", "Name three rivers."], ["How tall is Everest?"]
    leakage = find_leakage(keys(train), keys(test), lambda p: [train[i] for i in p], lambda p: [test[i] for i in p])
    assert ck.check_leakage(leakage, 1, sources).status == "ok"


@pytest.mark.parametrize(("spec", "status"), [("chatml", "ok"), ("chat", "ok"), ("alpaca", "warning"),
                                              ("qa", "warning")])
def test_template_contradicting_the_models_chat_template(tokenizer, spec, status):
    check = ck.check_template(resolve_template(spec, tokenizer), tokenizer, text_only=False)
    assert check.status == status
    if status == "warning":
        assert "data.template: auto" in check.message


def test_template_check_is_quiet_without_a_model_template():
    from tiny import tiny_tokenizer

    plain = tiny_tokenizer(chat_template=False)
    assert ck.check_template(resolve_template("qa", plain), plain, text_only=False).status == "ok"
