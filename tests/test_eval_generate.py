"""Batched generation: stop reasons, stop strings, order, padding invariance, seeded sampling."""

import pytest
import torch

from test_eval_models import script, scripted_model
from tiny import tiny_model
from tunesmith.evaluate.generate import generate, left_pad

SENTENCE = "Paris is the capital of France."


@pytest.fixture
def scripted(tokenizer):
    return scripted_model(tokenizer, script(tokenizer, SENTENCE))


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False).input_ids


def test_follows_the_script_and_stops_on_eos(tokenizer, scripted):
    [out] = generate(scripted, tokenizer, [ids(tokenizer, "Paris")], max_new_tokens=30)
    assert out.text == " is the capital of France."
    assert out.stopped == "eos"
    assert out.token_ids == ids(tokenizer, SENTENCE)[4:]
    assert out.new_tokens == len(out.token_ids) + 1  # the EOS it stopped on counts
    assert out.prompt_tokens == 4


def test_length_limit(tokenizer, scripted):
    [out] = generate(scripted, tokenizer, [ids(tokenizer, "Paris")], max_new_tokens=3)
    assert out.stopped == "length" and out.new_tokens == 3 and out.text == " is the cap"


def test_stop_string_cuts_the_text(tokenizer, scripted):
    [out] = generate(scripted, tokenizer, [ids(tokenizer, "Paris")], max_new_tokens=30, stop_strings=(" of",))
    assert out.stopped == "stop_string"
    assert out.text == " is the capital"
    assert tokenizer.decode(out.token_ids) == " is the capital of"


def test_eos_as_stop_string_is_handled_by_id(tokenizer, scripted):
    [out] = generate(scripted, tokenizer, [ids(tokenizer, "Paris")], max_new_tokens=30, stop_strings=("<|im_end|>",))
    assert out.stopped == "eos" and out.text == " is the capital of France."


def test_batch_keeps_input_order_and_per_row_stop_reasons(tokenizer, scripted):
    prompts = [ids(tokenizer, t) for t in ["Paris is the", "Paris", "xyz Paris is the capital of", "France"]]
    outs = generate(scripted, tokenizer, prompts, max_new_tokens=4, batch_size=3, stop_strings=(" of",))
    assert [o.text for o in outs] == [" capital", " is the capita", " France.", "."]
    assert [o.stopped for o in outs] == ["stop_string", "length", "eos", "eos"]
    assert [o.prompt_tokens for o in outs] == [len(p) for p in prompts]


def test_batched_equals_one_at_a_time(tokenizer):
    model = tiny_model(tokenizer).eval()
    texts = ["What is the capital", "hello", "The quick brown fox jumps over the lazy dog", "Sprout", "1 2 3 4"]
    prompts = [tokenizer(t).input_ids for t in texts]
    batched = generate(model, tokenizer, prompts, max_new_tokens=8, batch_size=4)
    single = [generate(model, tokenizer, [p], max_new_tokens=8)[0] for p in prompts]
    assert [b.token_ids for b in batched] == [s.token_ids for s in single]


def test_sampling_is_reproducible_with_a_seed_and_leaves_global_rng_alone(tokenizer):
    model = tiny_model(tokenizer).eval()
    prompts = [tokenizer(t).input_ids for t in ["hello", "Sprout"]]
    state = torch.random.get_rng_state()
    kwargs = dict(max_new_tokens=10, temperature=1.5, top_p=0.95, seed=7)
    first = generate(model, tokenizer, prompts, **kwargs)
    second = generate(model, tokenizer, prompts, **kwargs)
    assert [g.token_ids for g in first] == [g.token_ids for g in second]
    assert torch.equal(state, torch.random.get_rng_state())
    greedy = generate(model, tokenizer, prompts, max_new_tokens=10)
    assert [g.token_ids for g in first] != [g.token_ids for g in greedy]


def test_no_prompts_no_work(tokenizer, scripted):
    assert generate(scripted, tokenizer, [], max_new_tokens=5) == []


def test_left_pad_aligns_rows_at_the_end():
    input_ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0, device="cpu")
    assert input_ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
