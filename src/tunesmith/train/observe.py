"""What a run shows while it trains: a progress bar, train_log.jsonl, and TensorBoard or W&B."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tunesmith.errors import TunesmithError
from tunesmith.runs import atomic_write_text


class TrainLog:
    """train_log.jsonl: one JSON record per logging step (and per evaluation)."""

    def __init__(self, path: Path):
        self.path = path

    def restart_at(self, step: int) -> None:
        """Drop records past `step` (a resumed run writes them again), or start a fresh log at 0."""
        if step == 0 or not self.path.is_file():
            atomic_write_text(self.path, "")
            return
        kept = [
            line
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= step
        ]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]


class ProgressBar:
    """A rich progress bar: step, loss, learning rate, tokens/s and ETA. Silent when disabled."""

    def __init__(self, total: int, done: int, enabled: bool, console: Console | None = None):
        self.enabled = enabled
        self._bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("lr {task.fields[lr]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            disable=not enabled,
        )
        self._task = self._bar.add_task("train", total=total, completed=done, loss="-", lr="-", tps="-")

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._bar.stop()

    def advance(self, step: int, record: dict[str, Any] | None = None) -> None:
        fields = {}
        if record:
            fields = {
                "loss": f"{record['loss']:.4f}"
                + (f" reward acc {record['reward_accuracy']:.2f}" if "reward_accuracy" in record else ""),
                "lr": f"{record['lr']:.2e}",
                "tps": f"{record['tokens_per_s']:.0f}",
            }
        self._bar.update(self._task, completed=step, **fields)

    def print(self, text: str) -> None:
        if self.enabled:
            self._bar.console.print(text)


class Trackers:
    """TensorBoard or Weights & Biases, when asked for (train.report_to) and installed."""

    def __init__(self, report_to: str, run_dir: Path, config: dict[str, Any]):
        self._writer = None
        self._wandb = None
        if report_to == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise TunesmithError(
                    "train.report_to: tensorboard is not installed: `pip install tensorboard`, or set report_to: none"
                ) from None
            self._writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        elif report_to == "wandb":
            try:
                import wandb
            except ImportError:
                raise TunesmithError(
                    "train.report_to: wandb is not installed: `pip install wandb`, or set report_to: none"
                ) from None
            self._wandb = wandb.init(
                project="tunesmith", name=run_dir.name, dir=str(run_dir), config=config, resume="allow"
            )

    def log(self, record: dict[str, Any]) -> None:
        step = record["step"]
        values = {k: v for k, v in record.items() if k != "step" and isinstance(v, int | float)}
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(
                    f"train/{key}" if not key.startswith("eval") else key.replace("_", "/", 1), value, step
                )
        if self._wandb is not None:
            self._wandb.log(values, step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._wandb is not None:
            self._wandb.finish()
