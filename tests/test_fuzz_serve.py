"""Fuzzing the server's request bodies: every answer is a success or a 4xx error object, never a 500,
and a bad request in a concurrent batch never fails its valid batch-mates."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_serve_support import running_server, tiny_loaded
from tunesmith.serve.app import create_app
from tunesmith.serve.schemas import Limits

PATHS = ("/v1/completions", "/v1/chat/completions")
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=10)
roles = st.sampled_from(["user", "assistant", "system", "developer", "tool", "", "USER"])
message = st.fixed_dictionaries({"role": roles}, optional={"content": st.one_of(
    st.text(max_size=40), st.none(), st.lists(st.fixed_dictionaries({"type": st.just("text"),
                                                                     "text": st.text(max_size=10)}), max_size=3),
    junk)})
fields = {
    "model": st.one_of(st.just("tiny"), st.text(max_size=6), junk),
    "max_tokens": st.one_of(st.integers(-3, 12), st.integers(2**31, 2**70), junk),
    "temperature": st.one_of(st.floats(-1, 3) | st.just(float("nan")), junk),
    "top_p": st.one_of(st.floats(-0.5, 1.5) | st.just(float("inf")), junk),
    "n": st.one_of(st.integers(-1, 20), junk),
    "stream": st.one_of(st.booleans(), junk),
    "stop": st.one_of(st.text(max_size=4), st.lists(st.text(max_size=4), max_size=6), junk),
    "seed": st.one_of(st.integers(-(2**70), 2**70), junk),
    "presence_penalty": st.one_of(st.floats(-3, 3), junk),
    "logit_bias": junk,
    "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": st.booleans()}), junk),
    "user": junk,
}
completion_body = st.fixed_dictionaries({}, optional={**fields, "prompt": st.one_of(
    st.text(max_size=60), st.lists(st.text(max_size=10), max_size=4), st.lists(st.integers(-5, 400), max_size=8),
    st.lists(st.lists(st.integers(-5, 400), max_size=5), max_size=3), junk)})
chat_body = st.fixed_dictionaries({}, optional={**fields, "messages": st.one_of(
    st.lists(message, max_size=4), junk), "max_completion_tokens": st.one_of(st.integers(-2, 12), junk)})
valid_chat = st.fixed_dictionaries({
    "model": st.just("tiny"), "max_tokens": st.integers(1, 6), "temperature": st.floats(0, 2),
    "seed": st.integers(0, 2**63 - 1), "stream": st.booleans(),
    "messages": st.lists(st.fixed_dictionaries({"role": st.just("user"), "content": st.text(min_size=1, max_size=30)
                                                .filter(str.strip)}), min_size=1, max_size=1),
})


@pytest.fixture(scope="module")
def http():
    app = create_app(tiny_loaded(name="tiny"), max_batch=4, limits=Limits(max_body_bytes=200_000, max_tokens=12))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _send(http: httpx.Client, path: str, body) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, allow_nan=True)
    with http.stream("POST", path, content=content, headers={"content-type": "application/json"}) as response:
        response.read()
        return response


def _allowed(response: httpx.Response) -> bool:
    """Success, or a 4xx with an OpenAI error object."""
    if response.status_code == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            return response.text.rstrip().endswith("data: [DONE]")
        return "choices" in response.json()
    if 400 <= response.status_code < 500:
        error = response.json()["error"]
        return isinstance(error["message"], str) and error["message"] != ""
    return False


@FUZZ
@given(body=completion_body)
def test_fuzz_completions(http, body):
    response = _send(http, "/v1/completions", body)
    assert _allowed(response), (body, response.status_code, response.text[:300])


@FUZZ
@given(body=chat_body)
def test_fuzz_chat(http, body):
    response = _send(http, "/v1/chat/completions", body)
    assert _allowed(response), (body, response.status_code, response.text[:300])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(raw=st.one_of(st.binary(max_size=200), st.just(b"[" * 50_000), st.just(b'{"a":' * 30_000),
                     st.text(max_size=100).map(str.encode)), path=st.sampled_from(PATHS))
def test_fuzz_raw_bytes(http, raw, path):
    response = _send(http, path, raw)
    assert 400 <= response.status_code < 500 or _allowed(response), (raw[:80], response.status_code, response.text)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(good=st.lists(valid_chat, min_size=2, max_size=5), bad=st.lists(st.one_of(chat_body, completion_body),
                                                                        min_size=1, max_size=5))
def test_fuzz_concurrent_batch_of_valid_and_invalid(http, good, bad):
    jobs = [("/v1/chat/completions", body, True) for body in good]
    jobs += [(PATHS[i % 2], body, False) for i, body in enumerate(bad)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        responses = list(pool.map(lambda job: _send(http, job[0], job[1]), jobs))
    for (_, body, valid), response in zip(jobs, responses, strict=True):
        assert _allowed(response), (body, response.status_code, response.text[:300])
        if valid:
            assert response.status_code == 200, (body, response.text[:300])
