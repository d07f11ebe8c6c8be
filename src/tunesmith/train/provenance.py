"""What a run directory records so that a run can be trusted and reproduced: train_info.json.

Library versions, hardware, the exact command, the data fingerprint, the resolved precision and
the estimate beside the measurement. `reproduce` retrains the same config into a new run directory
(RUN_DIR-repro), so it trains from step 0 and never touches the record it came from.
"""

from __future__ import annotations

import json
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path

import torch

from tunesmith.config import Config
from tunesmith.runs import RunDir, atomic_write_json

INFO_FILE = "train_info.json"
LIBRARIES = ("tunesmith", "torch", "transformers", "peft", "accelerate", "datasets", "safetensors", "tokenizers")
# settings that may change between a kill and a resume without changing the weights
RESUMABLE_CHANGES = {
    "run_dir",
    "trust_remote_code",
    "eval",
    "data.num_proc",
    "train.resume",
    "train.save_every",
    "train.keep_checkpoints",
    "train.log_every",
    "train.report_to",
    "train.eval_every",
    "train.early_stopping_patience",
    "train.keep_best",
    "train.gradient_checkpointing",
    "train.compile",
}


def resume_fingerprint(config: Config, run: RunDir, data: str | None = None) -> dict:
    """Everything that must match for a checkpoint to be continued: settings, data, model.

    `data`: the prepared data's fingerprint when known before preparing (else read from data/)."""
    flat = _flatten(config.model_dump(mode="json"))
    kept = {k: v for k, v in flat.items() if not any(k == c or k.startswith(c + ".") for c in RESUMABLE_CHANGES)}
    return {**kept, "data.fingerprint": data or data_fingerprint(run)}


def data_fingerprint(run: RunDir) -> str | None:
    try:
        return json.loads((run.data / "fingerprint.json").read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def hardware() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write(
    run: RunDir, config: Config, precision, attention: str, estimate, measured: dict, result, processes: int
) -> None:
    atomic_write_json(
        run.root / INFO_FILE,
        {
            "command": command_line(),
            "reproduce": reproduce_command(run),
            "libraries": library_versions(),
            "hardware": hardware(),
            "data_fingerprint": data_fingerprint(run),
            "seed": config.train.seed,
            "processes": processes,
            "precision": precision.as_dict(),
            "attention": attention,
            "steps": result.steps,
            "resumed_from_step": result.resumed_from,
            "final_loss": result.final_loss,
            "eval_loss": result.eval_loss,
            "best_step": result.progress.best_step,
            "stopped_early": result.progress.stopped_early,
            "estimate": estimate.as_dict(),
            "measured": measured,
        },
    )


def reproduce_command(run: RunDir) -> str:
    """Train this run's config again from scratch, into a new run directory beside it."""
    from tunesmith.trust import allowed

    flags = ["--trust-remote-code"] if allowed() else []
    return shlex.join(["tunesmith", *flags, "train", str(run.config), "--set", f"run_dir={run.root}-repro"])


def command_line() -> str:
    """The command as typed: `tunesmith train ...`, `python -m tunesmith train ...`, or the script."""
    program = Path(sys.argv[0])
    if program.name == "__main__.py":
        return shlex.join(["python", "-m", program.parent.name, *sys.argv[1:]])
    return shlex.join([program.name, *sys.argv[1:]])


def _flatten(data: dict, prefix: str = "") -> dict:
    flat: dict = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
