"""Checks that need no model: run before anything slow is loaded, so a mistake costs no waiting.

Today: a rerun in the same run directory with a changed setting. `train.resume: auto` would
continue the checkpoint there, and the checkpoint refuses other settings, but only after the
model was loaded; here the same comparison is made from the files alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from tunesmith.config import Config
from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir

# parts of a checkpoint's fingerprint that only training can know (data size, processes, data hash)
KNOWN_AT_TRAIN_TIME = {"steps", "world", "data.fingerprint"}


def check_before_loading(config: Config, resume: bool | None = None) -> None:
    """Raise TunesmithError when training would resume a checkpoint written with other settings."""
    from tunesmith.train import checkpoint as ckpt
    from tunesmith.train.provenance import resume_fingerprint

    run = RunDir(Path(config.run_dir))
    latest = ckpt.latest_checkpoint(run.checkpoints)
    wanted = {"auto": True, "always": True, "never": False}[config.train.resume] if resume is None else resume
    if latest is None or not wanted:
        return
    try:
        saved = ckpt.read_state(latest).get("fingerprint") or {}
    except (OSError, ValueError):
        return  # unreadable: training's own restore reports it
    now = resume_fingerprint(config, run)
    changed = sorted(k for k in (set(saved) | set(now)) - KNOWN_AT_TRAIN_TIME if saved.get(k) != now.get(k))
    if not changed and _data_file_changed(config, run, saved.get("data.fingerprint")):
        changed = ["data.path (the file's contents)"]
    if changed:
        shown = ", ".join(f"{k} ({saved.get(k)!r} -> {now.get(k)!r})" if k in now else k for k in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        raise TunesmithError(
            f"run_dir {run.root} holds a checkpoint ({latest.name}) of a run with other settings: {shown}{more}. "
            f"Use a new run directory (--set run_dir=runs/NEW), or start this one over with "
            f"--set train.resume=never"
        )


def _data_file_changed(config: Config, run: RunDir, trained_on: str | None) -> bool:
    """The checkpoint was trained on the prepared data there, and the data file has changed since."""
    from tunesmith.data.fingerprint import content_digest

    try:
        stored = json.loads((run.data / "fingerprint.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if stored.get("fingerprint") != trained_on or not Path(config.data.path).exists():
        return False
    return stored.get("data_file") != content_digest(Path(config.data.path), "data.path")

