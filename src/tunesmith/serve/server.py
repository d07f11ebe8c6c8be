"""`tunesmith serve MODEL`: load the model once and run the OpenAI-compatible app under uvicorn."""

from __future__ import annotations

import os
import socket
import sys

from tunesmith.errors import TunesmithError

API_KEY_ENV = "TUNESMITH_API_KEY"


def serve(
    target: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    max_batch: int = 8,
    model_name: str | None = None,
    log_level: str = "info",
    dtype: str = "auto",
) -> None:
    """Serve `target` (run dir, export, hub id, folder, .gguf, embedded) until interrupted.

    The API key comes from `api_key`, else the TUNESMITH_API_KEY environment variable; without
    either, /v1 is open (fine on 127.0.0.1, which is the default host).
    """
    import uvicorn

    from tunesmith.loading import load_for_use
    from tunesmith.serve.app import create_app

    if max_batch < 1:
        raise TunesmithError(f"--max-batch must be at least 1, got {max_batch}")
    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    check_port_free(host, port)
    loaded = load_for_use(target, dtype=dtype)
    app = create_app(loaded, api_key=api_key, max_batch=max_batch, model_name=model_name)
    name = model_name or loaded.name
    auth = "API key required" if api_key else "no API key"
    print(f"serving {loaded.describe()} at http://{host}:{port}/v1 as '{name}' ({auth})", file=sys.stderr)
    if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: {host} is reachable from other machines and no API key is set "
              f"(--api-key or {API_KEY_ENV})", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def check_port_free(host: str, port: int) -> None:
    """Fail with a clear message before loading the model, rather than after."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise TunesmithError(
                f"cannot listen on {host}:{port} ({err.strerror}); choose another --port or --host"
            ) from None
