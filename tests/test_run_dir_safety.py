"""Defects 4-7 and 9: one writer per run directory, finished weights kept, validate before writing,
a reproduce line that reproduces, a failed prep that leaves nothing behind, resume that says so."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tunesmith.cli import app
from tunesmith.config import load_config
from tunesmith.data.prepare import prepare
from tunesmith.errors import TunesmithError
from tunesmith.pipeline import run as run_pipeline
from tunesmith.runs import HOUSEKEEPING, LOCK_FILE, writing
from tunesmith.train import train
from tunesmith.train.checkpoint import ResumeMismatch

HOLD = """
import sys, time
from tunesmith.runs import writing
with writing(sys.argv[1], "tunesmith train (test holder)"):
    print("held", flush=True)
    time.sleep(600)
"""


def _rows(path, n=40, offset=0):
    path.write_text("".join(json.dumps({"question": f"What is {i} plus {i}?", "answer": f"It is {2 * i + offset}."})
                            + "\n" for i in range(n)))
    return path


def _config(run, model_dir, data, *extra):
    return load_config(None, [f"model={model_dir}", f"data.path={data}", f"run_dir={run}", "train.max_steps=4",
                              "train.save_every=2", "data.test_size=8", "train.compile=false", *extra])


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in HOUSEKEEPING}


@pytest.fixture
def trained(tmp_path, tiny_model_dir):
    data = _rows(tmp_path / "qa.jsonl")
    config = _config(tmp_path / "run", tiny_model_dir, data)
    train(config, progress=False)
    return config, tmp_path / "run"


def test_second_writer_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path, tiny_model_dir):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        config = _config(run, tiny_model_dir, _rows(tmp_path / "qa.jsonl"))
        with pytest.raises(TunesmithError, match=r"in use by pid \d+ \(tunesmith train \(test holder\)\)"):
            train(config, progress=False, resume=False)
        assert not (run / "checkpoints").exists() and not (run / "config.yaml").exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the OS drops the lock with the process
        holder.wait()
    assert (run / LOCK_FILE).exists()
    assert train(config, progress=False).steps == 4


def _another_process_can_write(run) -> bool:
    probe = "import sys; from tunesmith.runs import writing\nwith writing(sys.argv[1], 'probe'): pass"
    return subprocess.run([sys.executable, "-c", probe, str(run)], capture_output=True).returncode == 0


def test_lock_is_reentrant_within_one_process(tmp_path):
    run = tmp_path / "run"
    with writing(run, "outer"):
        with writing(run, "inner"):
            (run / "kept").write_text("x")
        assert not _another_process_can_write(run)  # leaving the inner hold kept the outer's lock
    assert _another_process_can_write(run)  # and leaving the outer freed it


def test_a_run_dir_that_cannot_be_written_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TunesmithError, match=r"run_dir .*file/run: cannot write there"):
        with writing(blocker / "run", "tunesmith prep"):
            pass


def test_a_finished_run_is_not_replaced_without_overwrite(trained, tiny_model_dir):
    config, run = trained
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text("{}")
    before = _snapshot(run / "adapter")
    other_lr = config.model_copy(update={"train": config.train.model_copy(update={"learning_rate": 1e-3})})
    with pytest.raises(ResumeMismatch, match="learning_rate.*--overwrite"):
        train(other_lr, progress=False)
    import shutil

    shutil.rmtree(run / "checkpoints")  # the defect's case: nothing to resume, a finished model
    with pytest.raises(TunesmithError, match=r"already holds trained weights \(adapter/\).*run_dir=.*-2.*--overwrite"):
        train(other_lr, progress=False)
    assert _snapshot(run / "adapter") == before and (run / "eval" / "metrics.json").exists()

    result = train(other_lr, progress=False, overwrite=True)
    assert result.steps == 4 and _snapshot(run / "adapter") != before
    assert not (run / "eval").exists()  # the old eval described the old weights


def test_a_refused_run_has_changed_nothing(trained, tiny_model_dir, tmp_path):
    config, run = trained
    before = _snapshot(run)
    changed = _config(run, tiny_model_dir, _rows(tmp_path / "other.jsonl", offset=1))
    with pytest.raises(ResumeMismatch, match="data.fingerprint"):
        run_pipeline(changed)
    assert _snapshot(run) == before  # config.yaml and data/ as they were


def test_reproduce_line_trains_a_new_run_dir_and_keeps_the_record(trained):
    config, run = trained
    record = (run / "train_info.json").read_text()
    reproduce = shlex.split(json.loads(record)["reproduce"])
    assert reproduce[:2] == ["tunesmith", "train"] and reproduce[-1] == f"run_dir={run}-repro"
    result = CliRunner().invoke(app, reproduce[1:])
    assert result.exit_code == 0, result.output
    repro = run.parent / f"{run.name}-repro"
    assert json.loads((repro / "train_info.json").read_text())["steps"] == 4
    assert (run / "train_info.json").read_text() == record
    original, again = _snapshot(run / "adapter"), _snapshot(repro / "adapter")
    assert original["adapter_model.safetensors"] == again["adapter_model.safetensors"]


def test_resume_says_where_it_resumed(trained, capsys):
    config, run = trained
    import shutil

    shutil.rmtree(run / "checkpoints" / "step-4")
    shutil.rmtree(run / "adapter")
    (run / "train_info.json").unlink()
    assert train(config, progress=True).steps == 4
    assert "resumed from step 2" in capsys.readouterr().err


def test_a_failed_first_prep_leaves_no_run_directory(tmp_path, tiny_model_dir):
    run = tmp_path / "new-run"
    with pytest.raises(TunesmithError, match="does not exist"):
        prepare(_config(run, tiny_model_dir, tmp_path / "missing.jsonl"))
    assert not run.exists()


def test_compare_is_refused_while_another_process_writes_the_run(trained, tmp_path):
    from tunesmith.evaluate.runner import compare

    config, run = trained
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TunesmithError, match=r"in use by pid \d+ \(tunesmith train \(test holder\)\)"):
            compare(config, models=("base",), progress=False, similarity=False)
        assert not (run / "eval").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert "base" in compare(config, models=("base",), progress=False, similarity=False)
