"""Defect 9's smaller items: each gets the clear answer it lacked."""

from __future__ import annotations

import json

import httpx
import pytest

from test_serve_support import running_server, tiny_loaded
from tunesmith.config import load_config
from tunesmith.data.load import load_rows
from tunesmith.errors import TunesmithError
from tunesmith.serve.app import create_app
from tunesmith.serve.schemas import Limits


@pytest.fixture(scope="module")
def http():
    app = create_app(tiny_loaded(name="tiny"), limits=Limits(max_tokens=16))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _post(http, path, body):
    return http.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body", "param", "says"),
    [
        ("/v1/completions", {"model": "tiny", "prompt": []}, "prompt", "prompt: is empty"),
        ("/v1/completions", {"model": "tiny", "prompt": "hi", "stop": list("abcde")}, "stop",
         "stop: at most 4 stop sequences, got 5"),
        ("/v1/completions", {"model": "tiny", "prompt": "hi", "stop": 7}, "stop", "a list of up to 4 strings"),
        ("/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                                  "temperature": float("nan")}, "temperature", "finite number"),
        ("/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                                  "seed": 2**70}, "seed", "less than 9223372036854775808"),
        ("/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                                  "seed": -1}, "seed", "greater than or equal to 0"),
    ],
)
def test_edge_validation(http, path, body, param, says):
    response = _post(http, path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and says in error["message"]


def test_largest_seed_is_served(http):
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 2, "temperature": 1.0, "seed": 2**63 - 1}
    assert _post(http, "/v1/completions", body).status_code == 200


def test_set_errors_name_the_set_not_the_file(tmp_path):
    config = tmp_path / "my.yaml"
    config.write_text("train:\n  epochs: 2\n")
    with pytest.raises(TunesmithError) as caught:
        load_config(config, ["train.max_steps=abc"])
    assert str(caught.value).startswith("--set train.max_steps=abc: train.max_steps:")
    config.write_text("train:\n  epochs: -1\n")
    with pytest.raises(TunesmithError, match=rf"^{config}: train.epochs"):
        load_config(config, ["train.max_steps=3"])


def test_null_answer_is_reported_as_null(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text(json.dumps({"question": "q?", "answer": None}) + "\n" + json.dumps({"question": "q2?"}) + "\n")
    with pytest.raises(TunesmithError) as caught:
        load_rows(data, work_dir=tmp_path / "work")
    message = str(caught.value)
    assert "field 'answer' is null, expected a string" in message and "missing field 'answer'" in message


def test_serve_reads_the_api_key_from_the_environment(monkeypatch):
    from typer.testing import CliRunner

    from tunesmith.cli import app

    seen = {}
    monkeypatch.setattr("tunesmith.serve.serve", lambda target, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("TUNESMITH_API_KEY", "s3cret")
    assert CliRunner().invoke(app, ["serve", "some-model"]).exit_code == 0
    assert seen["api_key"] == "s3cret"
