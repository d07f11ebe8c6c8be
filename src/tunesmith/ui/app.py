"""The dashboard's HTTP app: the page (static files shipped in the package) and a JSON API over RUNS_DIR.

    GET  /                          the page; /static/* its script and style
    GET  /api/runs                  the runs table
    GET  /api/diff?a=&b=            two runs: config diff and metrics side by side
    GET  /api/training?run=&since=  train_log.jsonl records from line `since`, plan, train_info.json
    GET  /api/data?run=             data report and token lengths;  /api/examples?run=&split=&offset=
    GET  /api/compare?run=          metrics.json, side-by-side predictions, tags, template check
    POST /api/playground            {run, model, prompt, settings} -> server-sent events of the reply
    GET  /api/form                  the start-a-run form (from the Config model); POST /api/launch
    GET  /api/output?run=           output of a run started from the page
    POST /api/pairs                 preference pairs from a run's failures (where `tunesmith pairs` exists)

With an API key every /api route needs `Authorization: Bearer <key>`, as `tunesmith serve` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from tunesmith.config import EMBEDDED_MODEL
from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir
from tunesmith.serve.errors import KEY_HINT, bearer_ok
from tunesmith.ui import config_form, launches, views
from tunesmith.ui.playground import Playground, Settings
from tunesmith.ui.runs_index import config_diff, find_runs, read_yaml, summary


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def create_app(runs_dir: Path, *, api_key: str | None = None, playground: Playground | None = None) -> FastAPI:
    runs_dir = Path(runs_dir).resolve()
    playground = playground or Playground()
    static = resources.files("tunesmith.ui") / "static"
    app = FastAPI(title="tunesmith ui", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.exception_handler(TunesmithError)
    async def user_error(request: Request, err: TunesmithError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=400)

    @app.exception_handler(HTTPProblem)
    async def problem(request: Request, err: HTTPProblem) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    api = APIRouter(prefix="/api", dependencies=[Depends(_require_key(api_key))])

    def run_of(name: str) -> RunDir:
        for path in find_runs(runs_dir):
            if (path == runs_dir and name == ".") or path.name == name:
                return RunDir(path)
        raise HTTPProblem(404, f"no run named {name!r} under {runs_dir}")

    @api.get("/runs")
    def runs() -> dict:
        return {"runs_dir": str(runs_dir), "runs": [summary(p, runs_dir) for p in find_runs(runs_dir)]}

    @api.get("/diff")
    def diff(a: str, b: str) -> dict:
        first, second = run_of(a), run_of(b)
        return {"a": summary(first.root, runs_dir), "b": summary(second.root, runs_dir),
                "config": config_diff(read_yaml(first.config), read_yaml(second.config)),
                "metrics": {"a": views.comparison(first)["metrics"], "b": views.comparison(second)["metrics"]}}

    @api.get("/training")
    def training(run: str, since: int = 0) -> dict:
        found = run_of(run)
        return {**views.training(found, max(0, since)), "summary": summary(found.root, runs_dir),
                "output": launches.output_tail(runs_dir, found.root)}

    @api.get("/config")
    def config(run: str) -> dict:
        return read_yaml(run_of(run).config)

    @api.get("/data")
    def data(run: str) -> dict:
        return views.data_overview(run_of(run))

    @api.get("/examples")
    def examples(run: str, split: str = "train", offset: int = 0) -> dict:
        return views.data_examples(run_of(run), split, max(0, offset))

    @api.get("/compare")
    def compare(run: str) -> dict:
        return views.comparison(run_of(run))

    @api.post("/playground")
    async def play(request: Request) -> StreamingResponse:
        body = await _json(request)
        found = run_of(str(body.get("run", "")))
        try:
            settings = Settings(**(body.get("settings") or {}))
        except TypeError as err:
            raise TunesmithError(f"settings: {err}") from None
        settings.check()
        side, prompt = str(body.get("model", "")), str(body.get("prompt", ""))
        await run_in_threadpool(playground.model, found.root, side)  # load errors become a 400, not a broken stream
        return StreamingResponse(_events(playground.stream(found.root, side, prompt, settings)),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @api.get("/form")
    def form() -> dict:
        roots = [Path.cwd(), Path.cwd() / "examples", Path.cwd() / "data"]
        files = [f for f in config_form.data_files(roots) if not Path(f).resolve().is_relative_to(runs_dir)]
        models = [EMBEDDED_MODEL] + [read_yaml(p / "config.yaml").get("model") for p in find_runs(runs_dir)]
        return {"fields": config_form.form_fields(), "data_files": files, "runs_dir": str(runs_dir),
                "models": [m for m in dict.fromkeys(models) if isinstance(m, str)], "pairs": _has_command("pairs")}

    @api.post("/launch")
    async def launch(request: Request) -> dict:
        body = await _json(request)
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise TunesmithError("values must be an object of config keys to text")
        name = str(body.get("name", ""))
        config = config_form.build_config(runs_dir, name, {str(k): str(v) for k, v in values.items()})
        return launches.launch(runs_dir, name, config)

    @api.get("/output")
    def output(run: str) -> dict:
        return {"output": launches.output_tail(runs_dir, run_of(run).root)}

    @api.post("/pairs")
    async def pairs(request: Request) -> dict:
        found = run_of(str((await _json(request)).get("run", "")))
        if not _has_command("pairs"):
            raise HTTPProblem(501, "this tunesmith has no `pairs` command: preference pairs are not available")
        done = await run_in_threadpool(subprocess.run, [sys.executable, "-m", "tunesmith", "pairs", str(found.root)],
                                       capture_output=True, text=True, timeout=3600)
        return {"returncode": done.returncode, "output": (done.stdout + done.stderr)[-4000:]}

    app.include_router(api)
    return app


def _events(pieces):
    """Server-sent events: {"delta"} per piece, then {"done"}; a failure mid-stream is an {"error"} event."""
    try:
        for piece in pieces:
            yield f"data: {json.dumps({'delta': piece})}\n\n"
        yield f"data: {json.dumps({'done': True})}\n\n"
    except TunesmithError as err:
        yield f"data: {json.dumps({'error': str(err)})}\n\n"


async def _json(request: Request) -> dict:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise TunesmithError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise TunesmithError("the request body must be a JSON object")
    return body


def _has_command(name: str) -> bool:
    from tunesmith.cli import app as cli_app

    return any((c.name or (c.callback.__name__ if c.callback else "")) == name for c in cli_app.registered_commands)


def _require_key(api_key: str | None):
    async def check(authorization: str | None = Header(None)) -> None:
        if not bearer_ok(authorization, api_key):
            raise HTTPProblem(401, KEY_HINT)

    return check
