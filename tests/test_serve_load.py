"""Bounded concurrency on loopback: 16 clients x 4 requests, every answer right, the server still up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai

from test_serve_support import running_server, tiny_loaded
from tunesmith.serve.app import create_app

CLIENTS, REQUESTS = 16, 4
PROMPTS = ["The", "What is the capital", "hello world 0 1", "Sprout Support:", "The quick brown fox jumps"]


def test_sixteen_concurrent_clients_all_get_their_own_answers():
    app = create_app(tiny_loaded(name="tiny"), max_batch=8)
    with running_server(app) as url:
        def ask(client_index: int) -> list[tuple[str, str]]:
            client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)
            answers = []
            for request in range(REQUESTS):
                prompt = PROMPTS[(client_index + request) % len(PROMPTS)]
                if request % 2:  # half streamed, half not
                    chunks = client.completions.create(model="tiny", prompt=prompt, max_tokens=8, temperature=0,
                                                       stream=True)
                    answers.append((prompt, "".join(c.choices[0].text for c in chunks if c.choices)))
                else:
                    reply = client.completions.create(model="tiny", prompt=prompt, max_tokens=8, temperature=0)
                    answers.append((prompt, reply.choices[0].text))
            return answers

        reference = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        expected = {p: reference.completions.create(model="tiny", prompt=p, max_tokens=8, temperature=0).choices[0].text
                    for p in PROMPTS}  # one at a time: no batching
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = [answer for answers in pool.map(ask, range(CLIENTS), timeout=120) for answer in answers]
        assert len(results) == CLIENTS * REQUESTS
        assert all(text == expected[prompt] for prompt, text in results)  # batching changed no answer
        assert httpx.get(url + "/health").json()["status"] == "ok"
