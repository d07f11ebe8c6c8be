"""How a `train` call starts in its run directory: fresh, resumed, already done, or refused.

Decided before anything is written (config.yaml, data/, checkpoints/), so a refused run leaves the
run directory exactly as it found it. Trained weights are never replaced without `--overwrite`:
they are what eval/ and report.* describe.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tunesmith.config import Config
from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir
from tunesmith.train import checkpoint as ckpt
from tunesmith.train import provenance
from tunesmith.train.resume import ResumeMismatch

# fingerprint entries that depend on the prepared data's size or the process count, checked by fit
CHECKED_LATER = {"steps", "world"}
# what a training run writes; `--overwrite` clears it (data/ stays: it is reused when unchanged)
TRAINED_OUTPUTS = ("checkpoints", "adapter", "model", "eval", "report.md", "report.html",
                   provenance.INFO_FILE, "train_log.jsonl", "timings.json")


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
        expected = provenance.resume_fingerprint(config, run, data_fingerprint)
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
        return Start(True, step, finished=(run.root / provenance.INFO_FILE).is_file())
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
