"""The final weights: adapter/ (LoRA) or model/ (full), with the tokenizer and template.json, swapped in whole.

Every folder carries the training template twice: template.json (for tunesmith) and the tokenizer's
chat template (the same template as Jinja, so plain transformers + peft renders the same prompt
ids), plus a generation_config.json whose EOS ids are the stop ids training taught.
"""

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
        save_tokenizer_and_stops(model, tokenizer, template, staging)
        template.save(staging / TEMPLATE_FILE)
        swap_in(staging, output)
    cluster.barrier()


def save_tokenizer_and_stops(model, tokenizer, template: Template, folder: Path) -> None:
    """The tokenizer with the training template as its chat template, and generation_config.json's stop ids."""
    import copy

    from transformers import GenerationConfig

    from tunesmith.engine import stop_token_ids
    from tunesmith.use.chat_template import template_as_jinja

    saved = copy.deepcopy(tokenizer)  # the training tokenizer stays as it was
    saved.chat_template = template_as_jinja(template, tokenizer)
    saved.save_pretrained(folder)
    eos = sorted(stop_token_ids(model, tokenizer, template.stop_strings))
    generation = copy.deepcopy(getattr(model, "generation_config", None)) or GenerationConfig()
    generation.eos_token_id = eos[0] if len(eos) == 1 else eos
    generation.bos_token_id, generation.pad_token_id = tokenizer.bos_token_id, tokenizer.pad_token_id
    generation.save_pretrained(folder)


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
