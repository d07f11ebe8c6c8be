"""The CLI as a newcomer meets it: a data file instead of a config, quiet output, helpful --help,
generate to stdout, export to a default folder, and a changed setting caught before loading."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rows_io import write_jsonl
from tunesmith.cli import main
from tunesmith.config import load_config
from tunesmith.errors import TunesmithError
from tunesmith.quiet import QUIET_ENV
from tunesmith.runs import RunDir
from tunesmith.train.api import preflight
from tunesmith.train.record import resume_fingerprint

ROWS = [{"question": f"What is code {i}?", "answer": f"Code {i} opens box {i % 7}."} for i in range(30)]


def tunesmith(*args: str, cwd=None) -> subprocess.CompletedProcess:
    # without the switches an in-process `main()` of an earlier test may have set in this process
    env = {name: value for name, value in os.environ.items() if name not in QUIET_ENV}
    return subprocess.run([sys.executable, "-m", "tunesmith", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)


def test_a_data_file_is_a_config_with_defaults(tmp_path):
    data = write_jsonl(tmp_path / "support_faq.jsonl", ROWS)
    config = load_config(data, ["train.epochs=2"])
    assert config.data.path == str(data) and config.run_dir == "runs/support_faq" and config.train.epochs == 2
    assert load_config(data, ["run_dir=elsewhere"]).run_dir == "elsewhere"
    with pytest.raises(TunesmithError, match="does not exist: give a data file"):
        load_config(tmp_path / "missing.jsonl")


def test_prep_takes_a_data_file_and_is_quiet_unless_verbose(tiny_model_dir, tmp_path):
    write_jsonl(tmp_path / "faq.jsonl", ROWS)
    quiet = tunesmith("prep", "faq.jsonl", "--set", f"model={tiny_model_dir}", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert (tmp_path / "runs" / "faq" / "data" / "data_report.json").is_file()
    assert "rows: 30 loaded" in quiet.stdout
    assert "Saving the dataset" not in quiet.stderr and "Warning" not in quiet.stderr
    verbose = tunesmith("prep", "faq.jsonl", "-v", "--set", f"model={tiny_model_dir}",
                        "--set", "run_dir=runs/loud", cwd=tmp_path)
    assert verbose.returncode == 0 and "Saving the dataset" in verbose.stderr


def test_help_lists_choices_and_the_set_syntax():
    result = tunesmith("train", "--help")
    assert "--set section.key=value" in result.stdout and "<list[str]>" not in result.stdout
    assert "train.method = 'lora'  -- Fine-tuning method. One of: lora, full, qlora." in result.stdout
    assert "DATA_OR_CONFIG" in result.stdout


def test_generate_writes_jsonl_to_stdout_without_output(tiny_model_dir, tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": "hello"}\n{"prompt": "world"}\n')
    result = tunesmith("generate", str(tiny_model_dir), "-i", "p.jsonl", "--max-new-tokens", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"]["prompt"] for line in lines] == ["hello", "world"]
    assert all(isinstance(line["generation"], str) for line in lines)
    assert "wrote 2 lines to stdout" in result.stderr


def test_export_defaults_to_the_run_directory(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("tunesmith.use.export.export", lambda run_dir, out, **kw: calls.append(out) or out)
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(tmp_path / "run")])
    assert exit_.value.code == 0 and calls == [tmp_path / "run" / "export"]


def fake_checkpoint(config) -> None:
    from tunesmith.data.fingerprint import fingerprint
    from tunesmith.models import load_tokenizer, resolve_model

    run = RunDir(Path(config.run_dir))
    step = run.checkpoints / "step-4"
    step.mkdir(parents=True)
    data = fingerprint(config.data, load_tokenizer(resolve_model(config.model).path))["fingerprint"]
    fingerprint_ = {"steps": 10, "world": 1, **resume_fingerprint(config, run, data)}
    (step / "state.json").write_text(json.dumps({"step": 4, "fingerprint": fingerprint_}))


def test_a_changed_setting_in_a_used_run_dir_fails_before_loading(tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "faq.jsonl", ROWS)
    first = load_config(data, [f"run_dir={tmp_path / 'run'}"])
    fake_checkpoint(first)
    assert preflight(first).resuming  # same settings: resumes
    resumable = load_config(data, [f"run_dir={tmp_path / 'run'}", "train.log_every=1"])
    assert preflight(resumable).resuming  # a setting that may change on resume
    changed = load_config(data, [f"run_dir={tmp_path / 'run'}", "train.learning_rate=0.001"])
    assert not preflight(changed, resume=False).resuming  # --no-resume starts over
    write_jsonl(data, ROWS[:-1])
    with pytest.raises(TunesmithError, match=r"different data.fingerprint"):
        preflight(first)

    def no_loading(*args, **kwargs):
        raise AssertionError("prep ran before the settings were checked")

    monkeypatch.setattr("tunesmith.data.prepare.prepare", no_loading)
    from tunesmith.pipeline import run

    with pytest.raises(TunesmithError, match=r"different .*train.learning_rate.*--overwrite"):
        run(changed)


def test_the_verdict_is_printed_after_the_table(tmp_path):
    from io import StringIO

    from rich.console import Console

    from tunesmith.display import print_outcome

    report = "# Did fine-tuning help? — x\n\nModel `m`\n\n**On ROUGE-L, better.**\n\n| a |\n"
    (tmp_path / "report.md").write_text(report)
    out = StringIO()
    print_outcome("TABLE", tmp_path, Console(file=out, highlight=False))
    assert out.getvalue().splitlines()[:3] == ["TABLE", "", "On ROUGE-L, better."]


def test_quiet_sets_the_libraries_switches_unless_verbose(monkeypatch):
    import logging

    from tunesmith import quiet

    for name in quiet.QUIET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "0")  # the user's own choice is kept
    monkeypatch.setattr(logging.getLogger("bitsandbytes"), "level", logging.NOTSET)
    quiet.configure(verbose=True)
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    quiet.configure(verbose=False)
    env = os.environ
    assert env["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and env["TRANSFORMERS_VERBOSITY"] == "error"
    assert env["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "0"
    assert logging.getLogger("bitsandbytes.backends.cpu.ops").getEffectiveLevel() == logging.ERROR


def test_train_on_a_data_file_shows_the_data_checks_first(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "faq.jsonl", ROWS + [{"question": "", "answer": "x"}])  # 1 bad row of 31: stops
    with pytest.raises(SystemExit) as exit_:
        main(["train", "faq.jsonl", "--set", f"model={tiny_model_dir}", "--set", "train.max_steps=1"])
    assert exit_.value.code == 2 and "more than data.max_bad_rows_fraction (1%)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["train", "faq.jsonl", "--set", f"model={tiny_model_dir}", "--set", "train.max_steps=1",
              "--set", "data.max_bad_rows_fraction=0.05", "--set", "train.batch_size=4"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "faq.jsonl:31: empty 'question'" in out and out.index("rows: 30 loaded, 1 rejected") < out.index("weights:")
    assert (tmp_path / "runs" / "faq" / "adapter").is_dir()
