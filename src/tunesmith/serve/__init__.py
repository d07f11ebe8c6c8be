"""serve stage: an OpenAI-compatible HTTP server (app.py), its batching engine and decoding loop.

`serve(target, ...)` is the CLI entry point; `tunesmith.serve.app.create_app(loaded)` builds the
app for tests and embedding. Heavy imports (torch, fastapi, uvicorn) happen on first use.
"""

from tunesmith.callable_package import make_callable
from tunesmith.serve.server import serve

__all__ = ["serve"]

make_callable(__name__, "serve")  # tunesmith.serve(...) calls serve(...)
