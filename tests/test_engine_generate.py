"""The engine as eval uses it: stop reasons, stop strings, order, padding invariance, seeded sampling,
and a failure in one sequence finishing only that sequence."""

import pytest
import torch

from test_eval_models import script, scripted_model
from tiny import tiny_model
from tunesmith.engine import Sequence, stop_token_ids
from tunesmith.engine import generate as engine_generate
from tunesmith.engine.batch import left_pad

SENTENCE = "Paris is the capital of France."


@pytest.fixture
def scripted(tokenizer):
    return scripted_model(tokenizer, script(tokenizer, SENTENCE))


def generate(model, tokenizer, prompts, *, max_new_tokens, batch_size=16, stop_strings=(), temperature=0.0,
             top_p=1.0, seed=None):
    """Eval's use of the engine: one Sequence per prompt, stop ids from model + tokenizer."""
    sequences = [Sequence(p, max_new_tokens, temperature, top_p, stop_strings, seed) for p in prompts]
    stops = stop_token_ids(model, tokenizer, stop_strings)
    return engine_generate(model, tokenizer, sequences, stops, batch_size=batch_size)


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


def test_a_bad_seed_fails_only_its_own_sequence(tokenizer):
    model = tiny_model(tokenizer).eval()
    prompts = [tokenizer(t).input_ids for t in ["hello", "Sprout", "1 2 3"]]
    clean = generate(model, tokenizer, prompts, max_new_tokens=6)
    sequences = [Sequence(p, 6) for p in prompts]
    sequences[1].seed = 2**70  # torch.Generator cannot take it: the row cannot even start
    sequences[1].temperature = 1.0
    engine_generate(model, tokenizer, sequences, stop_token_ids(model, tokenizer))
    assert (sequences[1].finish_reason, sequences[1].stopped) == ("error", "error")
    assert "Overflow" in sequences[1].error or "seed" in sequences[1].error.lower()
    assert [sequences[0].token_ids, sequences[2].token_ids] == [clean[0].token_ids, clean[2].token_ids]


def test_a_failure_while_sampling_one_row_leaves_its_batch_mates_running(tokenizer, monkeypatch):
    import tunesmith.engine.batch as batch_module

    model = tiny_model(tokenizer).eval()
    prompts = [tokenizer(t).input_ids for t in ["hello", "Sprout", "1 2 3"]]
    clean = generate(model, tokenizer, prompts, max_new_tokens=6)
    real = batch_module.sample_one
    calls = {"n": 0}

    def flaky(logits, greedy, temperature, top_p, generator):
        if temperature == 0.5:  # the marked sequence fails on its third token
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("injected sampler failure")
            return greedy
        return real(logits, greedy, temperature, top_p, generator)

    monkeypatch.setattr(batch_module, "sample_one", flaky)
    sequences = [Sequence(p, 6) for p in prompts]
    sequences[0].temperature = 0.5
    engine_generate(model, tokenizer, sequences, stop_token_ids(model, tokenizer))
    assert sequences[0].finish_reason == "error" and "injected" in sequences[0].error
    assert sequences[0].token_ids == clean[0].token_ids[:2]  # it ran until it failed
    assert [s.token_ids for s in sequences[1:]] == [c.token_ids for c in clean[1:]]
    assert [s.finish_reason for s in sequences[1:]] == ["length", "length"]


def test_more_sequences_than_the_batch_join_as_rows_finish(tokenizer):
    model = tiny_model(tokenizer).eval()
    texts = ["a", "What is the capital of France", "hello world", "1 2 3 4 5 6", "Sprout", "The quick"]
    prompts = [tokenizer(t).input_ids for t in texts]
    limits = [2, 9, 3, 7, 4, 5]
    pairs = zip(prompts, limits, strict=True)
    single = [generate(model, tokenizer, [p], max_new_tokens=n)[0].token_ids for p, n in pairs]
    sequences = [Sequence(p, n) for p, n in zip(prompts, limits, strict=True)]
    finished = []
    engine_generate(model, tokenizer, sequences, set(), batch_size=2, progress=finished.append)
    assert [s.token_ids for s in sequences] == single
    assert sum(finished) == len(texts)
