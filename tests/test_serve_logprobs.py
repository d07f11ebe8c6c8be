"""echo / logprobs on /v1/completions, as lm-evaluation-harness's `local-completions` asks for them: a real
uvicorn server on 127.0.0.1, a real HTTP client, and lm-eval's own arithmetic on the reply."""

from __future__ import annotations

import httpx
import pytest

from test_serve_support import running_server, tiny_loaded
from tunesmith.evaluate.loglik import continuation_logprobs
from tunesmith.serve.app import create_app

CONTEXT, CONTINUATION = "What is the capital of France?", " Paris is the capital."


@pytest.fixture(scope="module")
def served():
    loaded = tiny_loaded()
    with running_server(create_app(loaded)) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield loaded, client


def lm_eval_payload(prompt) -> dict:
    """LocalCompletionsAPI._create_payload(..., generate=False), lm-eval 0.4."""
    return {"model": "tiny", "prompt": prompt, "temperature": 0, "max_tokens": 1, "logprobs": 1, "seed": 1234,
            "echo": True}


def lm_eval_parse(choice: dict, context_length: int) -> tuple[float, bool]:
    """LocalCompletionsAPI.parse_logprobs for one choice."""
    logprobs = choice["logprobs"]
    token_logprobs = logprobs["token_logprobs"][context_length:-1]
    tops = logprobs["top_logprobs"][context_length:-1]
    return sum(token_logprobs), all(tok == max(top.values()) for tok, top in zip(token_logprobs, tops, strict=True))


def test_lm_eval_loglikelihood_request_on_token_ids(served):
    loaded, client = served
    tokenizer = loaded.tokenizer
    context = tokenizer(CONTEXT).input_ids
    continuations = [tokenizer(CONTINUATION).input_ids, tokenizer(" Sprout").input_ids]
    reply = client.post("/v1/completions", json=lm_eval_payload([context + c for c in continuations]))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "text_completion" and len(body["choices"]) == 2
    expected = continuation_logprobs(loaded.model, [(context, c) for c in continuations],
                                     pad_id=tokenizer.pad_token_id)  # fmt: skip
    for choice, continuation, (total, count) in zip(body["choices"], continuations, expected, strict=True):
        logprobs = choice["logprobs"]
        assert len(logprobs["tokens"]) == len(context) + len(continuation) + 1  # the prompt, then one greedy token
        assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
        assert all(len(top) == 1 for top in logprobs["top_logprobs"][1:])
        assert logprobs["text_offset"][:2] == [0, len(logprobs["tokens"][0])]
        summed, _ = lm_eval_parse(choice, len(context))
        assert summed == pytest.approx(total, rel=1e-4, abs=1e-4) and count == len(continuation)
        assert choice["text"].startswith(CONTEXT)


def test_greedy_flag_and_string_prompts(served):
    loaded, client = served
    tokenizer = loaded.tokenizer
    prompt = tokenizer(CONTEXT).input_ids
    first = client.post("/v1/completions", json={**lm_eval_payload([prompt]), "max_tokens": 3}).json()["choices"][0]
    greedy = first["logprobs"]["tokens"][len(prompt):]  # the three greedy tokens, each the top choice
    assert len(greedy) == 3
    assert lm_eval_parse(first, len(prompt)) == (pytest.approx(sum(first["logprobs"]["token_logprobs"][-3:-1])), True)
    assert lm_eval_parse(first, 1)[1] is False  # the prompt's tokens are not what the random model would pick
    as_text = client.post("/v1/completions", json=lm_eval_payload(CONTEXT)).json()["choices"][0]
    assert as_text["logprobs"]["token_logprobs"][1:len(prompt)] == pytest.approx(
        first["logprobs"]["token_logprobs"][1:len(prompt)], abs=1e-5)


def test_echo_with_zero_tokens_scores_the_prompt_only(served):
    loaded, client = served
    prompt = loaded.tokenizer(CONTEXT).input_ids
    body = client.post("/v1/completions", json={"model": "tiny", "prompt": CONTEXT, "echo": True, "logprobs": 0,
                                                "max_tokens": 0}).json()  # fmt: skip
    choice = body["choices"][0]
    assert len(choice["logprobs"]["token_logprobs"]) == len(prompt) and choice["logprobs"]["top_logprobs"] is None
    assert body["usage"] == {"prompt_tokens": len(prompt), "completion_tokens": 0, "total_tokens": len(prompt)}
    refused = client.post("/v1/completions", json={**lm_eval_payload(CONTEXT), "stream": True})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "stream"
