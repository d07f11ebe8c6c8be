"""The CLI as a user meets it: help lists every command; user errors are one line and exit 2."""

import subprocess
import sys

from tunesmith.cli import main

COMMANDS = ["quickstart", "run", "prep", "train", "eval", "compare", "chat", "generate", "serve", "export", "ui"]


def tunesmith(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunesmith", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_help_lists_every_command():
    result = tunesmith("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"  {command} " in result.stdout


def test_config_help_is_generated_from_the_config_models():
    result = tunesmith("run", "--help")
    assert "train.max_steps = None  -- Stop after this many optimizer steps." in result.stdout
    assert "--set" in result.stdout


def test_bad_config_is_one_line_and_nonzero(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  max_step: 3\n")
    result = tunesmith("prep", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "unknown key 'train.max_step' (did you mean 'train.max_steps'?)" in lines[0]


def test_bad_override_value_is_one_line_and_nonzero(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: x\n")
    result = tunesmith("train", str(config), "--set", "train.method=adalora")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train.method" in result.stderr and "'adalora'" in result.stderr


def test_missing_model_is_one_line_and_nonzero(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "q", "answer": "a"}\n' * 20)
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {tmp_path / 'no-such-model'}\nrun_dir: {tmp_path / 'run'}\ndata:\n  path: {data}\n")
    result = tunesmith("prep", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a model folder" in result.stderr


def test_main_exits_2_on_a_missing_config(capsys, tmp_path):
    try:
        main(["prep", str(tmp_path / "nope.yaml")])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "does not exist" in capsys.readouterr().err
