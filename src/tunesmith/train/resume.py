"""Saving and restoring the whole training state, so that a resumed run ends where an uninterrupted one would.

A checkpoint holds the trainable weights, AdamW's moments, every process's RNG and `Progress`.
The learning rate is a function of the step and the data order a function of (seed, epoch), so
nothing else needs saving. A checkpoint written by a run with other settings or data is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file

from tunesmith.errors import TunesmithError
from tunesmith.runs import space_for, tensor_bytes
from tunesmith.train import checkpoint as ckpt
from tunesmith.train.distributed import Cluster
from tunesmith.train.masters import MasterWeights


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
    staging = ckpt.staging_dir(folder, name)
    with space_for(folder / name, tensor_bytes([*weights.values(), *moments.values()]), staging):
        if cluster.is_main:
            ckpt.begin(folder, name)
        cluster.barrier()
        ckpt.write_rng(staging, cluster.rank)
        cluster.barrier()
        if cluster.is_main:
            ckpt.write_main(staging, weights, moments, {**state.__dict__, "fingerprint": fingerprint})
            ckpt.commit(staging, folder / name, keep)
    cluster.barrier()


def save_best(folder: Path, objective, cluster: Cluster, masters: MasterWeights | None = None) -> None:
    weights = masters.state() if masters else cluster.trainable_state(objective)
    if cluster.is_main:
        with space_for(folder / "best", tensor_bytes(weights.values()), ckpt.staging_dir(folder, "best")):
            staging = ckpt.begin(folder, "best")
            ckpt.write_main(staging, weights, {}, {"best": True})
            ckpt.commit(staging, folder / "best", keep=10**9)
    cluster.barrier()


def restore(
    checkpoint: Path, objective, optimizer, names, fingerprint: dict, rank: int, masters: MasterWeights | None = None
) -> Progress:
    saved = ckpt.read_state(checkpoint)
    if saved.get("fingerprint") != fingerprint:
        changed = sorted(
            k
            for k in {**fingerprint, **saved.get("fingerprint", {})}
            if saved.get("fingerprint", {}).get(k) != fingerprint.get(k)
        )
        raise ResumeMismatch(checkpoint, changed)
    if masters:
        masters.load(ckpt.read_weights(checkpoint))
    else:
        ckpt.load_trainable(objective, ckpt.read_weights(checkpoint))
    ckpt.load_optimizer(optimizer, load_file(checkpoint / "optimizer.safetensors"), names)
    ckpt.restore_rng(checkpoint, rank)
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
