"""The server through the official openai client on a loopback port: answers equal direct decoding."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from test_serve_support import running_server, tiny_loaded
from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine.decoding import Sequence, generate, stop_token_ids
from tunesmith.serve.app import create_app

KEY = "sk-test-123"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def loaded():
    return tiny_loaded(name="tiny-chat")


@pytest.fixture(scope="module")
def base_url(loaded):
    with running_server(create_app(loaded, api_key=KEY, max_batch=4)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0, timeout=30)


def greedy(loaded, ids: list[int], max_new_tokens: int, stops=()) -> Sequence:
    stop_ids = stop_token_ids(loaded.model, loaded.tokenizer, loaded.template.stop_strings)
    return generate(loaded.model, loaded.tokenizer, [Sequence(ids, max_new_tokens, stop_strings=stops)], stop_ids)[0]


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == ["tiny-chat"]
    assert client.models.retrieve("tiny-chat").owned_by == "tunesmith"


def test_completion_is_the_raw_prompt_continued(client, loaded):
    prompt = "The quick brown fox"
    reply = client.completions.create(model="tiny-chat", prompt=prompt, max_tokens=8, temperature=0)
    expected = greedy(loaded, loaded.tokenizer(prompt).input_ids, 8)
    assert reply.choices[0].text == expected.text
    assert reply.choices[0].finish_reason == expected.finish_reason
    assert reply.usage.prompt_tokens == len(loaded.tokenizer(prompt).input_ids)
    assert reply.usage.completion_tokens == expected.generated
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_completion_applies_the_template(client, loaded):
    reply = client.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=10, temperature=0)
    ids = encode_prompt(loaded.tokenizer, loaded.template, MESSAGES)
    expected = greedy(loaded, ids, 10, loaded.template.stop_strings)
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == expected.text
    assert reply.usage.prompt_tokens == len(ids)
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")


def test_chat_streaming_sends_the_same_text_as_events(client):
    kwargs = {"model": "tiny-chat", "messages": MESSAGES, "max_tokens": 10, "temperature": 0}
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_completion_streaming_n_stop_and_seed(client, loaded):
    prompt = "What is the capital"
    plain = client.completions.create(model="tiny-chat", prompt=prompt, max_tokens=12, temperature=0).choices[0].text
    stop = plain[4:7]
    stopped = client.completions.create(model="tiny-chat", prompt=prompt, max_tokens=12, temperature=0, stop=[stop])
    assert stopped.choices[0].text == plain[: plain.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"

    kwargs = {"model": "tiny-chat", "prompt": prompt, "max_tokens": 6, "temperature": 1.0, "n": 3, "seed": 11}
    sampled = client.completions.create(**kwargs)
    assert sorted(c.index for c in sampled.choices) == [0, 1, 2]
    streamed = [""] * 3
    for chunk in client.completions.create(**kwargs, stream=True):
        for choice in chunk.choices:
            streamed[choice.index] += choice.text
    assert streamed == [c.text for c in sorted(sampled.choices, key=lambda c: c.index)]


def test_auth_is_required_and_checked(base_url):
    wrong = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.models.list()
    assert refused.value.status_code == 401
    bare = httpx.post(base_url + "/v1/completions", json={"model": "tiny-chat", "prompt": "hi"})
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(base_url + "/health").json()["status"] == "ok"  # liveness needs no key


def test_without_a_key_the_api_is_open(loaded):
    with running_server(create_app(loaded)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="anything", max_retries=0)
        reply = client.completions.create(model="tiny-chat", prompt="The", max_tokens=3, temperature=0)
        assert reply.usage.completion_tokens == 3


def record_finishes(monkeypatch) -> list[str]:
    """The engine's finish reasons, in order, as sequences end."""
    from tunesmith.engine.decoding import Decoder

    finishes = []
    real = Decoder.advance

    def recording(self, seq, *args):
        delta, finish = real(self, seq, *args)
        if finish:
            finishes.append(finish)
        return delta, finish

    monkeypatch.setattr(Decoder, "advance", recording)
    return finishes


def test_a_client_that_disconnects_mid_stream_frees_its_row(base_url, monkeypatch):
    finishes = record_finishes(monkeypatch)
    # seed 1 samples 400 tokens without EOS from this model: only the hang-up can end it early
    body = {"model": "tiny-chat", "prompt": "The", "max_tokens": 400, "temperature": 1.0, "seed": 1, "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", base_url + "/v1/completions", json=body, headers=headers) as reply:
        next(reply.iter_lines())  # the first event arrived; now hang up
    for _ in range(250):
        if finishes and httpx.get(base_url + "/health").json()["running"] == 0:
            break
        time.sleep(0.02)
    assert finishes == ["cancelled"]


def test_a_client_that_hangs_up_on_a_non_streaming_request_frees_its_row(base_url, monkeypatch):
    finishes = record_finishes(monkeypatch)
    body = {"model": "tiny-chat", "prompt": "The", "max_tokens": 400, "temperature": 1.0, "seed": 1}
    headers = {"Authorization": f"Bearer {KEY}"}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up before the 400 tokens
        httpx.post(base_url + "/v1/completions", json=body, headers=headers, timeout=0.1)
    for _ in range(250):
        if finishes and httpx.get(base_url + "/health").json()["running"] == 0:
            break
        time.sleep(0.02)
    assert finishes == ["cancelled"]
