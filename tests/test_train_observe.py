"""train_log.jsonl on resume, the progress bar's fields, and TensorBoard / W&B reporting."""

import io
import sys
import types

import pytest
from rich.console import Console

from tunesmith.errors import TunesmithError
from tunesmith.train.observe import ProgressBar, Trackers, TrainLog


def test_log_restart_drops_records_past_the_checkpoint(tmp_path):
    log = TrainLog(tmp_path / "train_log.jsonl")
    log.restart_at(0)
    for step in range(1, 7):
        log.append({"step": step, "loss": 1.0 / step})
    log.append({"step": 6, "eval_loss": 0.5})
    log.restart_at(4)
    assert [r["step"] for r in log.records()] == [1, 2, 3, 4]
    log.restart_at(0)
    assert log.records() == []


def test_progress_bar_shows_step_loss_lr_and_tokens_per_second():
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=False)
    with ProgressBar(total=10, done=0, enabled=True, console=console) as bar:
        bar.advance(3, {"loss": 1.23456, "lr": 2e-4, "tokens_per_s": 345.6})
    text = out.getvalue()
    assert "3/10" in text and "loss 1.2346" in text and "lr 2.00e-04" in text and "346 tok/s" in text
    assert "ETA" in text


def test_tensorboard_when_asked_for_and_installed(tmp_path, monkeypatch):
    scalars = []

    class Writer:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            scalars.append((tag, value, step))

        def close(self):
            scalars.append("closed")

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    trackers = Trackers("tensorboard", tmp_path, {})
    trackers.log({"step": 5, "loss": 1.5, "lr": 1e-4, "epoch": 0.5})
    trackers.log({"step": 5, "epoch": None, "eval_loss": 1.7})
    trackers.close()
    assert ("train/loss", 1.5, 5) in scalars and ("eval/loss", 1.7, 5) in scalars and scalars[-1] == "closed"


def test_a_tracker_that_is_not_installed_is_a_user_error_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
    with pytest.raises(TunesmithError, match=r"train.report_to: wandb is not installed: `pip install wandb`"):
        Trackers("wandb", tmp_path, {})


def test_no_tracker_by_default(tmp_path):
    trackers = Trackers("none", tmp_path, {})
    trackers.log({"step": 1, "loss": 1.0})
    trackers.close()
    assert not any(tmp_path.iterdir())
