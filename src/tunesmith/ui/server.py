"""`tunesmith ui [RUNS_DIR]`: serve the dashboard with uvicorn, on loopback unless told otherwise."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tunesmith.errors import TunesmithError
from tunesmith.serve.server import API_KEY_ENV, check_port_free

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def ui(runs_dir: str | Path = "runs", *, host: str = "127.0.0.1", port: int = 8765, api_key: str | None = None,
       log_level: str = "warning") -> None:
    import uvicorn

    from tunesmith.ui.app import create_app

    folder = Path(runs_dir).expanduser()
    if not folder.is_dir():
        raise TunesmithError(f"{folder} is not a folder: give the folder that holds your run directories "
                             "(it is created by `tunesmith run`), e.g. `tunesmith ui runs`")
    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    check_port_free(host, port)
    app = create_app(folder, api_key=api_key)
    auth = "API key required" if api_key else "no API key"
    print(f"tunesmith ui: http://{host}:{port}/ over {folder.resolve()} ({auth})", file=sys.stderr)
    if not api_key and host not in LOOPBACK:
        print(f"warning: {host} is reachable from other machines and no API key is set "
              f"(--api-key or {API_KEY_ENV})", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
