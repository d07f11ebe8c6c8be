"""The HTTP app: OpenAI-compatible routes over one loaded model, plus /health.

    GET  /health                 liveness (no key needed)
    GET  /v1/models              the one model served
    POST /v1/completions         raw prompt, tokenized as is (no template)
    POST /v1/chat/completions    messages rendered with the training template
"""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager
from typing import TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from pydantic import BaseModel, ValidationError

from tunesmith.engine import stop_token_ids
from tunesmith.engine.worker import Engine
from tunesmith.loading import LoadedModel
from tunesmith.serve.completions import Completions
from tunesmith.serve.errors import KEY_HINT, APIError, bad_request, bearer_ok, install_error_handlers
from tunesmith.serve.schemas import ChatRequest, CompletionRequest, Limits

Body = TypeVar("Body", bound=BaseModel)


def create_app(
    loaded: LoadedModel,
    *,
    api_key: str | None = None,
    max_batch: int = 8,
    limits: Limits | None = None,
    model_name: str | None = None,
    max_queue: int = 256,
) -> FastAPI:
    """An app serving `loaded` under `model_name` (default: its name); `api_key` turns on Bearer auth.

    Up to `max_batch` sequences are decoded together; up to `max_queue` more wait (beyond, 503).
    """
    limits = limits or Limits()
    name = model_name or loaded.name
    stop_ids = stop_token_ids(loaded.model, loaded.tokenizer, loaded.template.stop_strings)
    engine = Engine(loaded.model, loaded.tokenizer, stop_ids, max_batch=max_batch, max_queue=max_queue)
    completions = Completions(loaded, name, engine, limits)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine.start()
        yield
        engine.stop()

    app = FastAPI(title="tunesmith", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict:
        status = "ok" if engine.is_alive() else "starting"
        return {"status": status, "model": name, "queued": engine.queued, "running": engine.running}

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(_require_key(api_key))])

    @v1.get("/models")
    async def models() -> dict:
        return {"object": "list", "data": [_model_card(name, created)]}

    @v1.get("/models/{model:path}")
    async def model(model: str) -> dict:
        completions.check_model(model)
        return _model_card(name, created)

    @v1.post("/completions")
    async def completion(request: Request):
        return await completions.complete(await read_body(request, CompletionRequest, limits), _hang_up(request))

    @v1.post("/chat/completions")
    async def chat_completion(request: Request):
        return await completions.chat(await read_body(request, ChatRequest, limits), _hang_up(request))

    app.include_router(v1)
    return app


def _hang_up(request: Request):
    """An awaitable that returns when the client disconnects (the body is already read by then)."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return disconnected


def _model_card(name: str, created: int) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": "tunesmith"}


def _require_key(api_key: str | None):
    async def check(authorization: str | None = Header(None)) -> None:
        if not bearer_ok(authorization, api_key):
            raise APIError(401, KEY_HINT, code="invalid_api_key")

    return check


async def read_body(request: Request, schema: type[Body], limits: Limits) -> Body:
    """Read at most `limits.max_body_bytes`, parse JSON, validate; every failure is a 4xx."""
    too_big = APIError(413, f"request body is larger than {limits.max_body_bytes} bytes", code="request_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise too_big
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise bad_request(f"the request body is not valid JSON ({err})") from None
    except RecursionError:
        raise bad_request("the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object")
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise bad_request(f"{where}: {first['msg']}", param=str(first["loc"][0]) if first["loc"] else None) from None
