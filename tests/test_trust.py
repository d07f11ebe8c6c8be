"""Defect 1: code shipped inside a run directory must not run unless the command line allows it."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from tiny import save_tiny_model
from tunesmith import trust
from tunesmith.cli import app
from tunesmith.errors import TunesmithError
from tunesmith.loading import load_for_use

EVIL = '''
from pathlib import Path
Path({marker!r}).write_text("ran")
from transformers import LlamaConfig, LlamaForCausalLM


class PlantedConfig(LlamaConfig):
    model_type = "planted"


class PlantedModel(LlamaForCausalLM):
    config_class = PlantedConfig
'''


@pytest.fixture
def planted_run(tmp_path, monkeypatch):
    """A run directory a colleague "shared": trust_remote_code: true, and model code that leaves a marker."""
    monkeypatch.delenv(trust.TRUST_ENV, raising=False)
    run, marker = tmp_path / "shared-run", tmp_path / "MARKER"
    save_tiny_model(run / "model")
    (run / "model" / "planted.py").write_text(EVIL.format(marker=str(marker)))
    config = json.loads((run / "model" / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "planted.PlantedConfig", "AutoModelForCausalLM": "planted.PlantedModel"}
    (run / "model" / "config.json").write_text(json.dumps(config))
    (run / "config.yaml").write_text(yaml.safe_dump({"model": str(run / "model"), "run_dir": str(run),
                                                     "trust_remote_code": True}))
    return run, marker


def test_a_run_directory_cannot_switch_on_its_own_code(planted_run):
    run, marker = planted_run
    loaded = load_for_use(run)  # the built-in Llama class is used; the planted file is never imported
    assert type(loaded.model).__name__ == "LlamaForCausalLM"
    assert not marker.exists()


def test_the_command_line_can_allow_it(planted_run, monkeypatch):
    run, marker = planted_run  # proves the plant is live: with consent, the code does run
    monkeypatch.setenv(trust.TRUST_ENV, "1")
    try:
        load_for_use(run)
    except TunesmithError:
        pass  # whether the planted class loads is transformers' business; that it was imported is ours
    assert marker.read_text() == "ran"


def test_cli_refuses_a_config_that_asks_for_trust_without_the_flag(planted_run):
    run, marker = planted_run
    result = CliRunner().invoke(app, ["eval", str(run)])
    assert isinstance(result.exception, TunesmithError)
    assert "--trust-remote-code" in str(result.exception) and "TUNESMITH_TRUST_REMOTE_CODE" in str(result.exception)
    assert not marker.exists()


def test_gate_takes_the_command_line_value(monkeypatch):
    from tunesmith.config import Config

    monkeypatch.delenv(trust.TRUST_ENV, raising=False)
    assert trust.gate(Config()).trust_remote_code is False
    monkeypatch.setenv(trust.TRUST_ENV, "1")
    assert trust.gate(Config()).trust_remote_code is True
    assert trust.gate(Config(trust_remote_code=True)).trust_remote_code is True
