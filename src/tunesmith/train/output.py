"""The final weights: adapter/ (LoRA) or model/ (full), with the tokenizer and template.json, swapped in whole."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from torch import nn

from tunesmith.data.templates import TEMPLATE_FILE, Template
from tunesmith.train.distributed import Cluster


def save_output(
    cluster: Cluster, wrapped: nn.Module, model: nn.Module, tokenizer, template: Template, output: Path
) -> None:
    """Write the trained weights into `output` atomically (temp folder, then rename)."""
    state = _full_state(cluster, wrapped)  # every process takes part under FSDP
    if cluster.is_main:
        staging = output.with_name(f".{output.name}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging, safe_serialization=True, state_dict=state)
        tokenizer.save_pretrained(staging)
        template.save(staging / TEMPLATE_FILE)
        swap_in(staging, output)
    cluster.barrier()


def swap_in(staging: Path, target: Path) -> None:
    """Replace `target` by `staging` with renames: readers see the old folder or the new, never half."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _full_state(cluster: Cluster, wrapped: nn.Module) -> dict | None:
    """Under FSDP the weights are sharded: gather them (names without the Objective's prefix)."""
    if not cluster.fsdp:
        return None  # save_pretrained reads the model's own (unsharded) state
    full = cluster.accelerator.get_state_dict(wrapped)
    return {name.removeprefix("model."): tensor for name, tensor in full.items()}
