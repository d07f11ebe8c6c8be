"""What a run directory records about its training, and how a `train` call starts from that record.

A call starts fresh, resumes, finds the run done, or is refused, decided before anything is written
(config.yaml, data/, checkpoints/), so a refused run leaves the run directory as it found it.
Trained weights are never replaced without `--overwrite`: they are what eval/ and report.* describe.

train_info.json, written when training ends, says what the run was, so that it can be trusted and
reproduced: library versions, hardware, the exact command, the data fingerprint, every performance
decision with its reason, the hardware speeds the estimate used, and the estimate beside the
measurement. `reproduce` retrains the same config into a new run directory (RUN_DIR-repro), so it
trains from step 0 and never touches the record it came from.
"""

from __future__ import annotations

import json
import platform
import shlex
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from tunesmith.config import Config
from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir, atomic_write_json
from tunesmith.train import checkpoint as ckpt
from tunesmith.train.checkpoint import ResumeMismatch

INFO_FILE = "train_info.json"
# fingerprint entries that depend on the prepared data's size or the process count, checked by fit
CHECKED_LATER = {"steps", "world"}
# what a training run writes; `--overwrite` clears it (data/ stays: it is reused when unchanged)
TRAINED_OUTPUTS = ("checkpoints", "adapter", "model", "eval", "report.md", "report.html",
                   INFO_FILE, "train_log.jsonl", "timings.json")
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
    "train.attention",
    "train.short_rows_max_width",
    "train.remeasure_hardware",
}


@dataclass(frozen=True)
class Start:
    resuming: bool
    from_step: int | None = None  # the checkpoint's step when resuming
    finished: bool = False  # this config's training is complete here: nothing to do


def decide(config: Config, run: RunDir, data_fingerprint: str, requested: bool | None, overwrite: bool) -> Start:
    """Resume, start fresh, or report the run as done; raise when either would lose or mix work."""
    resuming = False if overwrite else should_resume(config.train.resume, requested, run.checkpoints)
    latest = ckpt.latest_checkpoint(run.checkpoints) if resuming else None
    state = ckpt.read_state(latest) if latest is not None else None
    if state is not None:
        expected = resume_fingerprint(config, run, data_fingerprint)
        saved = state.get("fingerprint") or {}
        changed = sorted(k for k in (expected.keys() | saved.keys()) - CHECKED_LATER if saved.get(k) != expected.get(k))
        if changed:
            raise ResumeMismatch(latest, changed)
    weights = run.final_weights()
    step = state["step"] if state is not None else None
    if weights is None or overwrite:
        return Start(resuming, step)
    if state is not None and _complete(state):
        # finished before; without train_info.json it was killed while saving: finish the save
        return Start(True, step, finished=(run.root / INFO_FILE).is_file())
    raise TunesmithError(
        f"run_dir {run.root} already holds trained weights ({weights.name}/), and its eval/ and report "
        "describe them; training again here would replace them. Use a new run_dir "
        f"(--set run_dir={run.root}-2), or pass --overwrite to start this one over"
    )


def should_resume(setting: str, requested: bool | None, checkpoints: Path) -> bool:
    """--resume / --no-resume win over train.resume; 'auto' resumes when a checkpoint exists."""
    exists = ckpt.latest_checkpoint(checkpoints) is not None
    wanted = {"auto": exists, "always": True, "never": False}[setting] if requested is None else requested
    if wanted and not exists:
        flag = "--resume" if requested else "train.resume: always"
        raise TunesmithError(f"{flag}: no checkpoint in {checkpoints} to resume from; run without it to start training")
    return wanted


def clear_trained(run: RunDir) -> None:
    """`--overwrite`: remove the previous training's outputs (prepared data is kept)."""
    for name in TRAINED_OUTPUTS:
        path = run.root / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _complete(state: dict) -> bool:
    steps = (state.get("fingerprint") or {}).get("steps")
    return bool(state.get("stopped_early")) or (steps is not None and state.get("step", 0) >= steps)


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
    run: RunDir, config: Config, precision, decisions: dict, speeds: dict, estimate, measured: dict, result,
    processes: int,
) -> None:
    """train_info.json; `decisions`: {name: {value, source, reason}}; `speeds`: the hardware figures used."""
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
            "attention": decisions.get("attention", {}).get("value"),
            "decisions": decisions,
            "hardware_speeds": speeds,
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
