"""Bad requests get a 4xx with an OpenAI error object; the server keeps answering afterwards."""

from __future__ import annotations

import httpx
import pytest

from test_serve_support import running_server, tiny_loaded
from tunesmith.serve.app import create_app
from tunesmith.serve.schemas import Limits

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def http():
    app = create_app(tiny_loaded(name="tiny"), limits=Limits(max_body_bytes=20_000, max_tokens=64))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


@pytest.mark.parametrize(
    ("path", "body", "status", "param", "code"),
    [
        (COMPLETIONS, {"model": "gpt-4", "prompt": "hi"}, 404, "model", "model_not_found"),
        (COMPLETIONS, {"model": "tiny", "prompt": "hi", "max_tokens": -1}, 400, "max_tokens", None),
        (COMPLETIONS, {"model": "tiny", "prompt": "hi", "max_tokens": 65}, 400, "max_tokens", None),
        (COMPLETIONS, {"model": "tiny", "prompt": "hi", "temperature": 3}, 400, "temperature", None),
        (COMPLETIONS, {"model": "tiny", "prompt": "hi", "top_p": 0}, 400, "top_p", None),
        (COMPLETIONS, {"model": "tiny", "prompt": "hi", "n": 0}, 400, "n", None),
        (COMPLETIONS, {"model": "tiny", "prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop", None),
        (COMPLETIONS, {"model": "tiny"}, 400, "prompt", None),
        (COMPLETIONS, {"model": "tiny", "prompt": ""}, 400, "prompt", None),
        (COMPLETIONS, {"model": "tiny", "prompt": [1, 99999]}, 400, "prompt", None),
        (COMPLETIONS, {"model": "tiny", "prompt": "0 1 2 3 " * 300}, 400, "prompt", "context_length_exceeded"),
        (COMPLETIONS, {"model": "tiny", "prompt": "hi", "logprobs": 2}, 400, "temperature", "unsupported"),
        (COMPLETIONS, {"model": "tiny", "prompt": "hi", "max_tokens": 0}, 400, "max_tokens", "unsupported"),
        (CHAT, {"model": "tiny", "messages": []}, 400, "messages", None),
        (CHAT, {"model": "tiny", "messages": [{"role": "tool", "content": "x"}]}, 400, "messages", None),
        (CHAT, {"model": "tiny", "messages": USER + [{"role": "assistant", "content": "a"}]}, 400, "messages", None),
        (CHAT, {"model": "tiny", "messages": USER + USER}, 400, "messages", None),
        (CHAT, {"model": "tiny", "messages": [{"role": "user", "content": "9 " * 600}]}, 400, "messages",
         "context_length_exceeded"),
        (CHAT, {"model": "tiny", "messages": USER, "max_completion_tokens": 0}, 400, "max_completion_tokens", None),
        (CHAT, {"model": "tiny", "messages": USER, "tools": [{"type": "function"}]}, 400, "tools", "unsupported"),
    ],
)
def test_invalid_request_is_a_4xx_naming_the_parameter(http, path, body, status, param, code):
    error = error_of(http.post(path, json=body), status)
    assert (error["param"], error["code"]) == (param, code)


def test_malformed_and_oversized_bodies(http):
    assert "not valid JSON" in error_of(http.post(CHAT, content=b'{"model": "tiny", "messages": ['), 400)["message"]
    assert "JSON object" in error_of(http.post(CHAT, content=b"[1, 2]"), 400)["message"]
    assert error_of(http.post(CHAT, content=b"\xff\xfe{"), 400)["type"] == "invalid_request_error"
    big = {"model": "tiny", "messages": [{"role": "user", "content": "x" * 30_000}]}
    assert error_of(http.post(CHAT, json=big), 413)["code"] == "request_too_large"

    def chunked():  # no Content-Length: the limit holds while reading
        yield b'{"model": "tiny", "prompt": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}'

    assert error_of(http.post(COMPLETIONS, content=chunked()), 413)["code"] == "request_too_large"


def test_unknown_routes_and_methods_get_error_objects(http):
    assert error_of(http.get("/v1/nothing"), 404)["type"] == "not_found_error"
    error_of(http.get(CHAT), 405)
    assert error_of(http.get("/v1/models/other"), 404)["code"] == "model_not_found"


def test_server_still_answers_after_bad_requests(http):
    for _ in range(3):
        http.post(CHAT, content=b"{{{")
        http.post(COMPLETIONS, json={"model": "tiny", "prompt": "hi", "max_tokens": -5})
    assert http.get("/health").json() == {"status": "ok", "model": "tiny", "queued": 0, "running": 0}
    reply = http.post(CHAT, json={"model": "tiny", "messages": USER, "max_tokens": 4, "temperature": 0})
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] <= 4


def test_a_failing_batch_is_a_500_object_and_the_engine_survives(http, monkeypatch):
    from tunesmith.engine.batch import Batch

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    body = {"model": "tiny", "prompt": "The", "max_tokens": 3}
    monkeypatch.setattr(Batch, "add", broken)
    error = error_of(http.post(COMPLETIONS, json=body), 500)
    assert error["type"] == "server_error" and "simulated" in error["message"]
    stream = http.post(COMPLETIONS, json={**body, "stream": True})
    assert "simulated" in stream.text and "[DONE]" not in stream.text
    monkeypatch.undo()
    assert http.post(COMPLETIONS, json=body).status_code == 200


def test_a_full_queue_is_a_503_the_client_may_retry():
    app = create_app(tiny_loaded(name="tiny"), max_queue=2)
    with running_server(app) as url:
        body = {"model": "tiny", "prompt": "The", "max_tokens": 2, "n": 3}
        assert error_of(httpx.post(url + COMPLETIONS, json=body), 503)["code"] == "overloaded"
        assert httpx.post(url + COMPLETIONS, json={**body, "n": 2}).status_code == 200
