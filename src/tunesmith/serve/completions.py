"""Turn validated requests into engine sequences, and engine events into OpenAI responses (JSON or SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.responses import JSONResponse, Response, StreamingResponse
from jinja2 import TemplateError
from starlette.concurrency import run_in_threadpool

from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine import Sequence, context_length
from tunesmith.engine.worker import Engine, EngineBusy, Job
from tunesmith.errors import TunesmithError
from tunesmith.evaluate.prompt_logprobs import scored_choices, scored_request_problem
from tunesmith.loading import LoadedModel
from tunesmith.serve.errors import APIError, bad_request
from tunesmith.serve.schemas import ChatRequest, CompletionRequest, Limits, Request


class Completions:
    def __init__(self, loaded: LoadedModel, name: str, engine: Engine, limits: Limits):
        self.loaded, self.name, self.engine, self.limits = loaded, name, engine, limits
        self.context = context_length(loaded.model)
        self.vocab = len(loaded.tokenizer)

    def check_model(self, model: str) -> None:
        if model != self.name:
            raise APIError(404, f"model '{model}' does not exist; this server serves '{self.name}'",
                           type="not_found_error", param="model", code="model_not_found")

    async def complete(self, req: CompletionRequest, disconnected: Disconnect | None = None) -> Response:
        self._check(req)
        prompts = req.prompts()
        if len(prompts) > self.limits.max_prompts:
            raise bad_request(f"at most {self.limits.max_prompts} prompts per request", param="prompt")
        ids = await run_in_threadpool(lambda: [self._prompt_ids(p) for p in prompts])
        if req.echo or req.logprobs is not None or req.max_tokens == 0:
            return await self._scored(req, ids)
        max_tokens = req.max_tokens or min(16, self.limits.max_tokens)  # OpenAI's default for completions
        return await self._respond(req, ids, max_tokens, req.stop_strings(), chat=False, disconnected=disconnected)

    async def chat(self, req: ChatRequest, disconnected: Disconnect | None = None) -> Response:
        self._check(req)
        messages = [m.as_template_message() for m in req.messages]
        if messages[-1]["role"] != "user":
            raise bad_request("the last message must be from the user", param="messages")
        template = self.loaded.template
        try:
            ids = await run_in_threadpool(encode_prompt, self.loaded.tokenizer, template, messages)
        except (TunesmithError, TemplateError) as err:
            message = f"cannot render these messages with the model's template: {err}"
            raise bad_request(message, param="messages") from None
        max_tokens = req.requested_max_tokens() or min(self.limits.default_max_tokens, self.limits.max_tokens)
        stops = tuple(dict.fromkeys(template.stop_strings + req.stop_strings()))
        return await self._respond(req, [ids], max_tokens, stops, chat=True, disconnected=disconnected)

    async def _scored(self, req: CompletionRequest, prompts: list[list[int]]) -> Response:
        """echo / logprobs (lm-evaluation-harness's log-likelihood requests): prompt token logprobs and up to
        MAX_TOKENS greedy tokens, computed by `tunesmith.evaluate.prompt_logprobs` beside the engine."""
        max_tokens = 16 if req.max_tokens is None else req.max_tokens
        problem = scored_request_problem(req.stream, req.n, req.temperature, max_tokens, req.echo)
        if problem:
            raise bad_request(problem[1], param=problem[0], code="unsupported")
        if any(len(ids) + max_tokens > self.context for ids in prompts):
            raise bad_request(f"prompt + max_tokens exceed this model's context of {self.context} tokens",
                              param="prompt", code="context_length_exceeded")
        choices = await run_in_threadpool(scored_choices, self.loaded.model, self.loaded.tokenizer, prompts,
                                          logprobs=req.logprobs, max_tokens=max_tokens, echo=req.echo)
        reply = Reply(self.name, False, sum(len(ids) for ids in prompts)).full(
            [c["text"] for c in choices], [c["finish_reason"] for c in choices], max_tokens * len(prompts))
        for choice, scored in zip(reply["choices"], choices, strict=True):
            choice["logprobs"] = scored["logprobs"]
        return JSONResponse(reply)

    # ------------------------------------------------------------------ shared

    def _check(self, req: Request) -> None:
        self.check_model(req.model)
        if (field := req.unsupported()) is not None:
            raise bad_request(f"'{field}' is not supported by tunesmith serve", param=field, code="unsupported")

    def _prompt_ids(self, prompt: str | list[int]) -> list[int]:
        ids = prompt if isinstance(prompt, list) else self.loaded.tokenizer(prompt).input_ids
        if not ids:
            raise bad_request("the prompt is empty", param="prompt")
        if not all(0 <= token < self.vocab for token in ids):
            raise bad_request(f"prompt token ids must be in [0, {self.vocab})", param="prompt")
        return ids

    def _sequences(self, req: Request, prompts: list[list[int]], max_tokens: int,
                   stops: tuple[str, ...]) -> list[Sequence]:
        if max_tokens > self.limits.max_tokens:
            raise bad_request(f"max_tokens is {max_tokens}; this server allows at most {self.limits.max_tokens}",
                              param="max_tokens")
        if len(prompts) * req.n > self.limits.max_choices:
            raise bad_request(f"prompts x n is {len(prompts) * req.n}; at most {self.limits.max_choices}", param="n")
        sequences = []
        for ids in prompts:
            if len(ids) >= self.context:
                raise bad_request(
                    f"the prompt is {len(ids)} tokens; this model's context is {self.context} tokens",
                    param="messages" if isinstance(req, ChatRequest) else "prompt", code="context_length_exceeded")
            for choice in range(req.n):
                seed = None if req.seed is None else req.seed + choice
                sequences.append(Sequence(ids, min(max_tokens, self.context - len(ids)), req.temperature,
                                          req.top_p, stops, seed))
        return sequences

    async def _respond(self, req: Request, prompts: list[list[int]], max_tokens: int, stops: tuple[str, ...],
                       chat: bool, disconnected: Disconnect | None = None) -> Response:
        sequences = self._sequences(req, prompts, max_tokens, stops)
        try:
            job = self.engine.submit(sequences)
        except EngineBusy:
            raise APIError(503, "the server is busy; retry shortly", type="server_error", code="overloaded") from None
        reply = Reply(self.name, chat, sum(len(ids) for ids in prompts))
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(self._stream(job, reply, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        async with _cancel_on_disconnect(job, disconnected):
            texts, finishes, tokens = [""] * len(sequences), [None] * len(sequences), 0
            async for event in self.engine.events(job):
                if event.error:
                    raise APIError(500, event.error, type="server_error")
                texts[event.index] += event.delta
                finishes[event.index] = event.finish_reason or finishes[event.index]
                tokens += event.completion_tokens
        return JSONResponse(reply.full(texts, finishes, tokens))

    async def _stream(self, job: Job, reply: Reply, include_usage: bool) -> AsyncIterator[str]:
        if reply.chat:
            for index in range(len(job.sequences)):
                yield _sse(reply.chunk(index, {"role": "assistant", "content": ""}, None))
        tokens = 0
        async for event in self.engine.events(job):
            if event.error:
                yield _sse(APIError(500, event.error, type="server_error").body())
                return
            tokens += event.completion_tokens
            if event.delta:
                yield _sse(reply.chunk(event.index, event.delta, None))
            if event.finish_reason:
                yield _sse(reply.chunk(event.index, "" if not reply.chat else {}, event.finish_reason))
        if include_usage:
            yield _sse({**reply.chunk(0, "", None), "choices": [], "usage": reply.usage(tokens)})
        yield "data: [DONE]\n\n"


Disconnect = Callable[[], Awaitable[None]]  # returns once the client has hung up


@contextlib.asynccontextmanager
async def _cancel_on_disconnect(job: Job, disconnected: Disconnect | None):
    """While a non-streaming request waits for its answer, a client hang-up cancels its sequences,
    so the engine stops decoding them (a streaming response is cancelled by Starlette instead)."""
    if disconnected is None:
        yield
        return

    async def watch() -> None:
        await disconnected()
        job.cancelled = True

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


class Reply:
    """The OpenAI response shapes for one request (chat or text completion)."""

    def __init__(self, model: str, chat: bool, prompt_tokens: int):
        self.model, self.chat, self.prompt_tokens = model, chat, prompt_tokens
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())

    def usage(self, completion_tokens: int) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": self.prompt_tokens + completion_tokens}

    def full(self, texts: list[str], finishes: list[str | None], completion_tokens: int) -> dict:
        if self.chat:
            choices = [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                        "logprobs": None} for i, (text, finish) in enumerate(zip(texts, finishes, strict=True))]
        else:
            choices = [{"index": i, "text": text, "finish_reason": finish, "logprobs": None}
                       for i, (text, finish) in enumerate(zip(texts, finishes, strict=True))]
        return {"id": self.id, "object": "chat.completion" if self.chat else "text_completion",
                "created": self.created, "model": self.model, "choices": choices,
                "usage": self.usage(completion_tokens)}

    def chunk(self, index: int, delta: str | dict, finish: str | None) -> dict:
        if self.chat:
            content = {"content": delta} if isinstance(delta, str) else delta
            choice = {"index": index, "delta": content, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": index, "text": delta, "finish_reason": finish, "logprobs": None}
        return {"id": self.id, "object": "chat.completion.chunk" if self.chat else "text_completion",
                "created": self.created, "model": self.model, "choices": [choice]}


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
