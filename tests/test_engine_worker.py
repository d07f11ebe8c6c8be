"""The engine's worker (continuous batching for the server): a failing sequence fails only its request."""

from __future__ import annotations

import asyncio

from test_serve_support import tiny_loaded
from tunesmith.engine import Sequence, generate, stop_token_ids
from tunesmith.engine.worker import Engine


def test_a_sequence_that_fails_in_the_engine_fails_only_its_own_request():
    loaded = tiny_loaded()
    model, tokenizer = loaded.model, loaded.tokenizer
    stops = stop_token_ids(model, tokenizer)
    prompt = tokenizer("The").input_ids
    [alone] = generate(model, tokenizer, [Sequence(prompt, 8)], stops)
    engine = Engine(model, tokenizer, stops, max_batch=4, batch_wait_s=0.05)

    async def collect(job):
        return [event async for event in engine.events(job)]

    async def main():
        good = engine.submit([Sequence(prompt, 8)])
        bad = engine.submit([Sequence(prompt, 8, temperature=1.0, seed=2**70)])  # past the schema's checks
        return await asyncio.gather(collect(good), collect(bad))

    try:
        good_events, bad_events = asyncio.run(main())
    finally:
        engine.stop()
    assert "".join(e.delta for e in good_events) == alone.text
    assert good_events[-1].finish_reason == alone.finish_reason and good_events[-1].error is None
    assert len(bad_events) == 1 and bad_events[0].error.startswith("generation failed:")
