"""The decoding loop every use path runs: sampling, stop strings, EOS, batching with a KV cache."""

from __future__ import annotations

import pytest
import torch

from test_serve_support import lively_model
from tiny import tiny_tokenizer
from tunesmith.engine.decoding import Sequence, decode_batch, generate, stop_token_ids
from tunesmith.engine.detokenize import TextStream
from tunesmith.engine.sampling import sample_next, top_p_filter


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def lm(tok):
    return lively_model(tok)


def hf_greedy(model, ids: list[int], max_new_tokens: int) -> list[int]:
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0)
    return out[0, len(ids):].tolist()


# ---------------------------------------------------------------- text released while streaming


def push_all(stream: TextStream, ids: list[int]) -> list[str]:
    return [stream.push(i) for i in ids]


def test_stop_string_split_over_tokens_is_never_streamed(tok):
    text = "What is the capital of France? Paris is the capital of France."
    stream = TextStream(tok, ("capital of F",))
    deltas = push_all(stream, tok(text, add_special_tokens=False).input_ids)
    assert stream.stopped
    assert stream.text == "What is the "
    assert "".join(deltas) == "What is the "
    assert all("cap" not in d for d in deltas)


def test_held_back_stop_prefix_is_released_at_the_end(tok):
    stream = TextStream(tok, ("the lazy cat",))
    deltas = push_all(stream, tok("The quick brown fox jumps over the lazy", add_special_tokens=False).input_ids)
    assert "".join(deltas) == "The quick brown fox jumps over "  # "the lazy" might still become the stop
    assert stream.flush() == "the lazy"
    assert not stream.stopped


def test_partial_utf8_characters_are_held_back(tok):
    ids = tok("été ü", add_special_tokens=False).input_ids
    stream = TextStream(tok)
    deltas = push_all(stream, ids) + [stream.flush()]
    assert "".join(deltas) == "été ü"
    assert all("\ufffd" not in d for d in deltas)


# ---------------------------------------------------------------- sampling


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])
    kept = top_p_filter(probs, 0.7)
    assert torch.allclose(kept, torch.tensor([0.0, 0.625, 0.0, 0.375]))
    assert torch.equal(top_p_filter(probs, 1.0), probs)
    assert torch.equal(top_p_filter(probs, 0.01), torch.tensor([0.0, 1.0, 0.0, 0.0]))
    assert torch.equal(top_p_filter(probs, 0.0), torch.tensor([0.0, 1.0, 0.0, 0.0]))


def test_sampling_is_greedy_at_zero_temperature_and_seeded_otherwise():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]] * 3)
    assert sample_next(logits, [0.0] * 3, [1.0] * 3, [None] * 3) == [1, 1, 1]

    def draw(seed):
        gens = [torch.Generator().manual_seed(seed) for _ in range(3)]
        return [sample_next(logits, [1.5] * 3, [1.0] * 3, gens) for _ in range(20)]

    assert draw(7) == draw(7)
    assert {t for row in draw(7) for t in row} > {1}  # really sampled
    gens = [torch.Generator().manual_seed(0) for _ in range(3)]
    assert all(sample_next(logits, [1.0] * 3, [0.3] * 3, gens) == [1, 1, 1] for _ in range(10))


# ---------------------------------------------------------------- decoding


def test_batched_greedy_equals_unbatched_transformers_generate(tok, lm):
    prompts = [tok(t).input_ids for t in ("The", "What is the capital of France?", "hello world 0 1 2")]
    sequences = generate(lm, tok, [Sequence(p, 10) for p in prompts], stop_ids=set())
    for prompt, seq in zip(prompts, sequences, strict=True):
        assert seq.token_ids == hf_greedy(lm, prompt, 10)
        assert seq.finish_reason == "length"
        assert seq.text == tok.decode(seq.token_ids, skip_special_tokens=True)


def test_eos_stop_string_and_limits(tok, lm):
    prompt = tok("What is the capital of France?").input_ids
    free = hf_greedy(lm, prompt, 12)
    eos_at = next(i for i in range(2, 12) if free[i] not in free[:i])
    [by_eos] = generate(lm, tok, [Sequence(prompt, 12)], stop_ids={free[eos_at]})
    assert (by_eos.token_ids, by_eos.finish_reason) == (free[:eos_at], "stop")
    assert by_eos.generated == eos_at + 1  # the EOS was generated too: usage counts it, as evaluate does

    full_text = tok.decode(free, skip_special_tokens=True)
    stop = full_text[5:8]
    [by_string] = generate(lm, tok, [Sequence(prompt, 12, stop_strings=(stop,))], stop_ids=set())
    assert by_string.finish_reason == "stop"
    assert by_string.text == full_text[: full_text.index(stop)]

    long_prompt = (prompt * 200)[:510]  # the tiny model's context is 512
    [clipped] = generate(lm, tok, [Sequence(long_prompt, 50)], stop_ids=set())
    assert (len(clipped.token_ids), clipped.finish_reason, clipped.generated) == (2, "length", 2)


def test_rows_finish_independently_and_can_be_cancelled(tok, lm):
    sequences = [Sequence(tok("The").input_ids, n) for n in (2, 6, 4)]
    steps = list(decode_batch(lm, tok, sequences, set(), is_cancelled=lambda i: i == 2))
    assert [len(s.token_ids) for s in sequences] == [2, 6, 0]
    assert [s.finish_reason for s in sequences] == ["length", "length", "cancelled"]
    assert len(steps) == 6
    finished = [(i, reason) for step in steps for i, _, reason in step if reason]
    assert finished == [(2, "cancelled"), (0, "length"), (1, "length")]


def test_seeded_sampling_is_reproducible_within_a_batch(tok, lm):
    prompt = tok("The quick").input_ids

    def run(seeds):
        return [s.token_ids for s in generate(lm, tok, [Sequence(prompt, 8, 1.0, 1.0, (), x) for x in seeds], set())]

    first = run([1, 2])
    assert run([1, 2]) == first
    assert run([2])[0] == first[1]  # a row's stream does not depend on its batch
    assert first[0] != first[1]


def test_stop_token_ids_include_special_stop_strings(tok, lm):
    ids = stop_token_ids(lm, tok, ("<|im_end|>", "not a token", "<|im_start|>"))
    assert ids == {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_start|>")}


def test_sequences_joining_a_running_batch_decode_as_if_alone(tok, lm):
    from tunesmith.engine.decoding import Decoder

    prompts = {"long": "What is the capital of France? Paris", "short": "The", "late": "hello world 0 1 2 3 4 5"}
    alone = {k: hf_greedy(lm, tok(p).input_ids, n) for (k, p), n in zip(prompts.items(), (6, 3, 12), strict=True)}
    decoder = Decoder(lm, tok, stop_ids=set())
    batch = decoder.batch()
    sequences = {k: Sequence(tok(p).input_ids, len(alone[k])) for k, p in prompts.items()}
    batch.add([decoder.row("long", sequences["long"]), decoder.row("short", sequences["short"])])
    for _ in range(3):
        batch.step()
    assert [row.key for row in batch.rows] == ["long"]
    assert batch.can_join
    batch.add([decoder.row("late", sequences["late"])])  # left-padded to the running cache's width
    assert not batch.mask.all()
    while batch.rows:
        batch.step()
        if [row.key for row in batch.rows] == ["late"]:  # the padding only "late" had is cut away
            assert batch.mask.all()
            assert batch.mask.shape[1] == len(sequences["late"].prompt_ids) + len(sequences["late"].token_ids) - 1
    assert {k: s.token_ids for k, s in sequences.items()} == alone
