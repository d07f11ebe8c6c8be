"""Kill anywhere, the fast part (the sweep is bench/kill_sweep.py): a prep killed inside the prepared-data
swap and a train killed inside a checkpoint commit both rerun to exactly the uninterrupted result."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import pytest

from tunesmith.config import load_config
from tunesmith.data.prepare import prepare
from tunesmith.train import train

pytestmark = pytest.mark.slow
SWEEP = Path(__file__).resolve().parents[1] / "bench" / "kill_sweep.py"


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("kill_sweep", SWEEP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_killed_prep_and_train_rerun_to_the_uninterrupted_result(tmp_path, sweep):
    config = sweep.setup(tmp_path)
    reference, trial = tmp_path / "reference", tmp_path / "trial"
    uninterrupted = load_config(config, [f"run_dir={reference}"])  # in this process: fewer start-ups
    prepare(uninterrupted)
    train(uninterrupted, progress=False)

    prep = sweep.command("prep", config, trial)
    code, _ = sweep.run(prep, {**sweep.ENV, "TUNESMITH_KILL_AT": "prep.swap:1"})
    assert code == -signal.SIGKILL and not (trial / "data").exists()  # killed between the two renames
    code, err = sweep.run(prep, sweep.ENV)
    assert code == 0, err
    assert sweep.prepared_data(trial) == sweep.prepared_data(reference)
    assert not list(trial.glob(".data-*"))  # the killed run's staging copy was cleaned up

    train_cmd = sweep.command("train", config, trial)
    code, _ = sweep.run(train_cmd, {**sweep.ENV, "TUNESMITH_KILL_AT": "checkpoint.commit:2"})
    assert code == -signal.SIGKILL
    assert (trial / "checkpoints" / ".step-4.tmp").is_dir() and (trial / "checkpoints" / "step-2").is_dir()
    code, err = sweep.run(train_cmd, sweep.ENV)
    assert code == 0, err
    assert sweep.trained_weights(trial) == sweep.trained_weights(reference)  # bit for bit
