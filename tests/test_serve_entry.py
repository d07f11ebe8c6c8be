"""`tunesmith.serve.serve`, the CLI's entry point: a real process, its API key from the environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from test_serve_support import save_lively_model
from tunesmith.errors import TunesmithError
from tunesmith.serve import serve
from tunesmith.serve.server import check_port_free


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_process_takes_its_key_from_the_environment(tmp_path):
    model_dir = save_lively_model(tmp_path / "model")
    port = free_port()
    code = "import sys; from tunesmith.serve import serve; serve(sys.argv[1], port=int(sys.argv[2]), log_level='error')"
    env = {**os.environ, "TUNESMITH_API_KEY": "env-key", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-c", code, str(model_dir), str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the server did not come up"
            try:
                if httpx.get(url + "/health", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert httpx.get(url + "/v1/models").status_code == 401
        models = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer env-key"}).json()
        assert models["data"][0]["id"] == "model"  # a folder is served under its name
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "API key required" in output


def test_a_busy_port_is_a_user_error_before_any_loading():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(TunesmithError, match=f"cannot listen on 127.0.0.1:{port}"):
            check_port_free("127.0.0.1", port)
        with pytest.raises(TunesmithError, match="cannot listen"):
            serve("/no/such/model", port=port)
