"""Resumable checkpoints, so that a resumed run ends where an uninterrupted one would.

`checkpoints/step-N/` holds `weights.safetensors` (trainable parameters only), `optimizer.safetensors`
(AdamW moments), `rng-R.safetensors` (one per process) and `state.json` (`Progress` and the run's
fingerprint). The learning rate is a function of the step and the data order a function of
(seed, epoch), so nothing else needs saving. Everything is written into a hidden temporary folder
first and renamed into place, so a crash during a save leaves the previous checkpoint as it was.
No pickle is used. A checkpoint written by a run with other settings or data is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tunesmith.errors import TunesmithError
from tunesmith.faults import crash_point
from tunesmith.runs import space_for, tensor_bytes

if TYPE_CHECKING:  # distributed.py imports this module
    from tunesmith.train.distributed import Cluster
    from tunesmith.train.masters import MasterWeights

STEP_DIR = re.compile(r"^step-(\d+)$")
STATE_FILE = "state.json"  # written last: a folder without it is not a checkpoint


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_DIR.match(p.name)) and (p / STATE_FILE).is_file()
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def staging_dir(folder: Path, name: str) -> Path:
    """The temporary folder a checkpoint `name` is written into before it is renamed."""
    return folder / f".{name}.tmp"


def begin(folder: Path, name: str) -> Path:
    staging = staging_dir(folder, name)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def write_rng(staging: Path, rank: int) -> None:
    tensors = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state()
    _save(tensors, staging / f"rng-{rank}.safetensors")


def write_main(
    staging: Path, weights: dict[str, torch.Tensor], optimizer: dict[str, torch.Tensor], state: dict
) -> None:
    _save(weights, staging / "weights.safetensors")
    crash_point("checkpoint.weights")
    _save(optimizer, staging / "optimizer.safetensors")
    _write_json(staging / STATE_FILE, state)


def commit(staging: Path, target: Path, keep: int) -> None:
    """Rename the finished staging folder into place, then prune old checkpoints down to `keep`."""
    _fsync_dir(staging)
    crash_point("checkpoint.commit")
    if target.exists():  # the same step saved again (after a resume): swap, never leave a gap
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, target)
    _fsync_dir(target.parent)
    crash_point("checkpoint.prune")
    for stale in list_checkpoints(target.parent)[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)


def remove_stale(folder: Path) -> None:
    """Delete half-written checkpoints left behind by a crash."""
    if folder.is_dir():
        for path in folder.glob(".*.tmp"):
            shutil.rmtree(path, ignore_errors=True)


def read_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))


def read_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(checkpoint / "weights.safetensors")


def restore_rng(checkpoint: Path, rank: int) -> None:
    tensors = load_file(checkpoint / f"rng-{rank}.safetensors")
    torch.set_rng_state(tensors["cpu"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])


# ---------------------------------------------------------------- model and optimizer state


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().to("cpu").contiguous() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    missing = [name for name, p in params.items() if p.requires_grad and name not in weights]
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} trainable tensors, e.g. {missing[0]}")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)


def optimizer_tensors(optimizer: torch.optim.Optimizer, names: dict[int, str]) -> dict[str, torch.Tensor]:
    """AdamW's per-parameter state as flat tensors: '<param name>::<key>'."""
    flat: dict[str, torch.Tensor] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                tensor = value if torch.is_tensor(value) else torch.tensor(value)
                flat[f"{names[id(p)]}::{key}"] = tensor.detach().to("cpu").contiguous()
    return flat


def load_optimizer(optimizer: torch.optim.Optimizer, flat: dict[str, torch.Tensor], names: dict[int, str]) -> None:
    device_of = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            device_of[names[id(p)]] = p
    for key, tensor in flat.items():
        name, _, field = key.rpartition("::")
        p = device_of[name]
        value = tensor.to(p.device) if field != "step" else tensor
        optimizer.state[p][field] = value


def parameter_names(model: nn.Module) -> dict[int, str]:
    return {id(p): name for name, p in model.named_parameters()}


# ---------------------------------------------------------------- the training state: save, restore


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint's state.json."""

    step: int = 0
    tokens_seen: int = 0
    best_eval_loss: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False


def save_checkpoint(
    folder, objective, optimizer, names, state: Progress, fingerprint, keep: int, cluster: Cluster,
    masters: MasterWeights | None = None,
) -> None:
    """checkpoints/step-N, atomically: every process writes its RNG, the main one the rest, then renames.
    With `masters` (bf16 weights) the fp32 masters are the weights saved."""
    name = f"step-{state.step}"
    weights = masters.state() if masters else cluster.trainable_state(objective)
    moments = cluster.optimizer_state(objective, optimizer, names)
    staging = staging_dir(folder, name)
    with space_for(folder / name, tensor_bytes([*weights.values(), *moments.values()]), staging):
        if cluster.is_main:
            begin(folder, name)
        cluster.barrier()
        write_rng(staging, cluster.rank)
        cluster.barrier()
        if cluster.is_main:
            write_main(staging, weights, moments, {**state.__dict__, "fingerprint": fingerprint})
            commit(staging, folder / name, keep)
    cluster.barrier()


def save_best(folder: Path, objective, cluster: Cluster, masters: MasterWeights | None = None) -> None:
    weights = masters.state() if masters else cluster.trainable_state(objective)
    if cluster.is_main:
        with space_for(folder / "best", tensor_bytes(weights.values()), staging_dir(folder, "best")):
            staging = begin(folder, "best")
            write_main(staging, weights, {}, {"best": True})
            commit(staging, folder / "best", keep=10**9)
    cluster.barrier()


def restore(
    checkpoint: Path, objective, optimizer, names, fingerprint: dict, rank: int, masters: MasterWeights | None = None
) -> Progress:
    saved = read_state(checkpoint)
    if saved.get("fingerprint") != fingerprint:
        changed = sorted(
            k
            for k in {**fingerprint, **saved.get("fingerprint", {})}
            if saved.get("fingerprint", {}).get(k) != fingerprint.get(k)
        )
        raise ResumeMismatch(checkpoint, changed)
    if masters:
        masters.load(read_weights(checkpoint))
    else:
        load_trainable(objective, read_weights(checkpoint))
    load_optimizer(optimizer, load_file(checkpoint / "optimizer.safetensors"), names)
    restore_rng(checkpoint, rank)
    known = Progress.__dataclass_fields__
    return Progress(**{k: v for k, v in saved.items() if k in known})


class ResumeMismatch(TunesmithError):
    """The checkpoint was written by a run with different settings or data."""

    def __init__(self, checkpoint: Path, changed: list[str]):
        super().__init__(
            f"train.resume: {checkpoint} was written by a run with different {', '.join(changed)}; "
            "use a new run_dir (--set run_dir=...), or pass --overwrite to start this run_dir over"
        )
        self.checkpoint, self.changed = checkpoint, changed


# ---------------------------------------------------------------- files


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file(tensors, str(path))
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _write_json(path: Path, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
