"""Masking, EOS, BOS and truncation, on hand-checked token ids of the tiny tokenizer."""

import pytest
from tokenizers import processors

from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import IGNORE_INDEX, Encoder, encode_prompt, encode_segments

M = IGNORE_INDEX
QA = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Paris"}], "input": ""}
# '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' and 'Paris<|im_end|>\n' in the tiny tokenizer
PROMPT_IDS = [1, 88, 86, 266, 202, 43, 76, 2, 202, 1, 68, 86, 86, 267, 272, 81, 87, 202]
ANSWER_IDS = [51, 68, 85, 267, 2, 202]


def encoder(tokenizer, spec="chatml", max_length=512, side="right", train_on_prompt=False):
    return Encoder(tokenizer, resolve_template(spec, tokenizer), max_length, side, train_on_prompt)


def bos_adding(tokenizer):
    """The tiny tokenizer, made to put BOS in front of everything (Llama-style)."""
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", tokenizer.bos_token_id)]
    )
    return tokenizer


def test_prompt_is_masked_and_answer_plus_eos_trained(tokenizer):
    encoded = encoder(tokenizer).encode(QA)
    assert encoded.input_ids == PROMPT_IDS + ANSWER_IDS
    assert encoded.labels == [M] * 18 + [51, 68, 85, 267, 2, 202]
    assert tokenizer.decode(ANSWER_IDS) == "Paris<|im_end|>\n"
    assert (encoded.prompt_tokens, encoded.response_tokens, encoded.response_kept) == (18, 6, 6)


def test_train_on_prompt_trains_every_token(tokenizer):
    encoded = encoder(tokenizer, train_on_prompt=True).encode(QA)
    assert encoded.labels == encoded.input_ids == PROMPT_IDS + ANSWER_IDS


def test_multi_turn_chat_trains_only_assistant_turns(tokenizer):
    chat = {"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Paris"},
    ], "input": ""}
    encoded = encoder(tokenizer, "chat").encode(chat)
    ids = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    system_and_user = ids("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                          "<|im_start|>assistant\n")
    hello = ids("Hello<|im_end|>\n")
    assert hello[-2:] == [2, 202]
    assert encoded.input_ids == system_and_user + hello + PROMPT_IDS + ANSWER_IDS
    assert encoded.labels == [M] * len(system_and_user) + hello + [M] * 18 + ANSWER_IDS
    assert encoded.labels.count(2) == 2  # EOS trained at the end of each assistant turn


@pytest.mark.parametrize("spec", ["qa", "alpaca", "none", "Q: {prompt}\nA: "])
def test_every_response_ends_with_eos(tokenizer, spec):
    encoded = encoder(tokenizer, spec).encode(QA)
    assert encoded.input_ids[-1] == tokenizer.eos_token_id
    assert encoded.labels[-1] == tokenizer.eos_token_id


def test_eos_appended_where_the_template_has_none(tokenizer):
    raw = encoder(tokenizer).encode({"text": "Paris"})
    assert raw.input_ids == [51, 68, 85, 267, 2]
    assert raw.labels == raw.input_ids  # raw text: every token trained, EOS included


def test_right_truncation_cuts_the_answer_end(tokenizer):
    encoded = encoder(tokenizer, max_length=20).encode(QA)
    assert encoded.input_ids == (PROMPT_IDS + ANSWER_IDS)[:20]
    assert encoded.labels == [M] * 18 + [51, 68]
    assert (encoded.response_tokens, encoded.response_kept) == (6, 2)
    assert tokenizer.eos_token_id not in encoded.labels


def test_right_truncation_can_lose_the_whole_answer(tokenizer):
    encoded = encoder(tokenizer, max_length=10).encode(QA)
    assert encoded.input_ids == PROMPT_IDS[:10]
    assert set(encoded.labels) == {M}
    assert encoded.response_kept == 0


def test_left_truncation_keeps_the_answer_and_eos(tokenizer):
    encoded = encoder(tokenizer, max_length=10, side="left").encode(QA)
    assert encoded.input_ids == (PROMPT_IDS + ANSWER_IDS)[-10:]
    assert encoded.labels == [M] * 4 + ANSWER_IDS
    assert (encoded.prompt_tokens, encoded.response_kept) == (18, 6)


def test_bos_added_once_for_a_tokenizer_that_adds_it(tokenizer):
    tokenizer = bos_adding(tokenizer)
    qa = encoder(tokenizer, "qa").encode(QA)
    assert qa.input_ids[0] == tokenizer.bos_token_id and qa.input_ids[1] != tokenizer.bos_token_id
    assert qa.labels[0] == M
    chatml = encoder(tokenizer, "chatml").encode(QA)  # the template writes <|im_start|> (= BOS) itself
    assert chatml.input_ids == PROMPT_IDS + ANSWER_IDS


def test_no_bos_added_by_a_tokenizer_that_does_not_add_it(tokenizer):
    assert encoder(tokenizer, "qa").encode(QA).input_ids[0] != tokenizer.bos_token_id


@pytest.mark.parametrize("spec", ["chat", "chatml", "qa", "alpaca"])
def test_generation_prompt_ids_are_the_training_prompt_ids(tokenizer, spec):
    template = resolve_template(spec, tokenizer)
    training = encoder(tokenizer, spec).encode(QA)
    prompt = encode_prompt(tokenizer, template, QA["messages"][:1])
    assert training.input_ids[: len(prompt)] == prompt
    assert training.labels[: len(prompt)] == [M] * len(prompt)
    assert training.labels[len(prompt)] != M


def test_encode_segments_keeps_its_contract(tokenizer):
    ids, labels = encode_segments(tokenizer, [("Hi", False), ("Paris", True)])
    assert ids == tokenizer("Hi", add_special_tokens=False).input_ids + [51, 68, 85, 267, 2]
    assert labels == [M] * 2 + [51, 68, 85, 267, 2]


def test_batch_and_single_encoding_agree(tokenizer):
    enc = encoder(tokenizer, "chat")
    examples = [QA, {"text": "hello world"}, {"messages": QA["messages"], "input": "in Europe"}]
    assert enc.encode_many(examples) == [enc.encode(e) for e in examples]
