"""Kill anywhere, the fast part (the sweep is bench/kill_sweep.py): a prep killed inside the prepared-data
swap and a train killed inside a checkpoint commit both rerun to exactly the uninterrupted result."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import pytest

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
    for stage in ("prep", "train"):
        code, err = sweep.run(sweep.command(stage, config, reference), sweep.ENV)
        assert code == 0, err

    prep = sweep.command("prep", config, trial)
    code, _ = sweep.run(prep, {**sweep.ENV, "TUNESMITH_KILL_AT": "prep.swap:1"})
    assert code == -signal.SIGKILL and not (trial / "data").exists()  # killed between the two renames
    code, err = sweep.run(prep, sweep.ENV)
    assert code == 0, err
    assert sweep.prepared_data(trial) == sweep.prepared_data(reference)
    assert not list(trial.glob(".data-*"))  # the killed run's staging copy was cleaned up

    train = sweep.command("train", config, trial)
    code, _ = sweep.run(train, {**sweep.ENV, "TUNESMITH_KILL_AT": "checkpoint.commit:2"})
    assert code == -signal.SIGKILL
    assert (trial / "checkpoints" / ".step-4.tmp").is_dir() and (trial / "checkpoints" / "step-2").is_dir()
    code, err = sweep.run(train, sweep.ENV)
    assert code == 0, err
    assert sweep.trained_weights(trial) == sweep.trained_weights(reference)  # bit for bit
