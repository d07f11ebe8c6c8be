"""Load a model *for use* (eval, compare, check, chat, generate, serve, export) with the template
it was trained with, on the device and in the dtype of the one load policy (precision.py).

A target is a run directory (base + adapter, or a full model), a merged export folder, or any
`model:` value (hub id, folder, .gguf, embedded default). For a run directory the template
recorded at training time is always the one applied. A LoRA adapter is merged into the fp32
base weights at load and the result cast to the policy's dtype: the weights every command runs
are the numbers the merged export holds, and an unmerged adapter's extra matmuls (2.6x slower
eval generation) are gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tunesmith import trust as trust_gate
from tunesmith.data.templates import TEMPLATE_FILE, Template, resolve_template
from tunesmith.errors import TunesmithError
from tunesmith.models import load_model, load_tokenizer, resolve_model
from tunesmith.precision import LoadPolicy, load_policy
from tunesmith.runs import RunDir

__all__ = ["TEMPLATE_FILE", "LoadedModel", "load_for_use"]


@dataclass
class LoadedModel:
    model: Any  # a transformers (or peft) causal LM, in eval mode
    tokenizer: Any
    template: Template
    name: str  # what /v1/models and reports call it
    policy: LoadPolicy | None = None  # device and dtype it runs in

    def describe(self) -> str:
        where = self.policy.describe() if self.policy else "as loaded"
        return f"{self.name}: {where}, template {self.template.name}"


def load_for_use(
    target: str | Path,
    *,
    dtype: str | None = None,
    trust_remote_code: bool | None = None,
    base_only: bool = False,
    device: str | None = None,
    merge_adapter: bool = True,
) -> LoadedModel:
    """Load whatever `target` names.

    Args:
        dtype: "auto" (default), "bf16", "fp16" or "fp32" (see precision.load_policy).
        trust_remote_code: allow the model's own code to run; None = as the command line says
            (tunesmith.trust). Never taken from a run directory's config.yaml.
        base_only: a run directory gives its untuned base model (same template).
        device: "cpu" or "cuda"; default: the GPU when there is one.
        merge_adapter: fold a LoRA adapter into the fp32 base weights before casting (default);
            False keeps the peft model (in the policy's dtype).
    """
    policy = load_policy(dtype or "auto", None if device in (None, "auto") else device)
    path = Path(target).expanduser()
    trust_remote_code = trust_gate.allowed() if trust_remote_code is None else trust_remote_code
    if path.is_dir() and (path / "config.yaml").is_file():
        loaded = _load_run(RunDir(path), policy, trust_remote_code, base_only, merge_adapter)
    elif path.is_dir() and (path / "adapter_config.json").is_file():
        raise TunesmithError(f"{path} is an adapter folder: pass its run directory instead")
    else:
        loaded = _load_model_spec(str(target), policy, trust_remote_code)
    loaded.policy = policy
    return loaded


def _load_model_spec(spec: str, policy: LoadPolicy, trust: bool) -> LoadedModel:
    resolved = resolve_model(spec)
    tokenizer = load_tokenizer(resolved.path, trust)
    template = _saved_template(resolved.path)
    if template is None and resolved.kind == "gguf" and not getattr(tokenizer, "chat_template", None):
        raise TunesmithError(
            f"{spec} has no chat template in its metadata (tokenizer.chat_template), so tunesmith cannot know "
            "how prompts were formatted: use it in a config with data.template set (alpaca, qa, chatml, ...), "
            "or re-export it with `tunesmith export --gguf`, which writes the training template into the file"
        )
    template = template or resolve_template("auto", tokenizer)
    model = _load_weights(resolved.path, policy, trust)
    local = Path(spec).expanduser().resolve()
    name = {"folder": local.name, "gguf": local.stem}.get(resolved.kind, resolved.spec)
    return LoadedModel(model, tokenizer, template, name)


def _load_run(run: RunDir, policy: LoadPolicy, trust: bool, base_only: bool, merge: bool) -> LoadedModel:
    raw = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or not raw.get("model"):
        raise TunesmithError(f"{run.config}: no 'model' key; is this a tunesmith run directory?")
    weights = run.final_weights()
    if weights is None and not base_only:
        raise TunesmithError(f"{run.root} has no trained weights yet (adapter/ or model/): run `tunesmith train` first")
    full_model = weights is not None and not (weights / "adapter_config.json").is_file()
    base_path = None if full_model and not base_only else resolve_model(str(raw["model"])).path
    has_tokenizer = weights is not None and (weights / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(weights if has_tokenizer else base_path, trust)
    template = (weights and _saved_template(weights)) or _saved_template(run.data)
    if template is None:
        data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
        template = resolve_template(data.get("template", "auto"), tokenizer)
    name = run.root.resolve().name
    if base_only:
        return LoadedModel(_load_weights(base_path, policy, trust), tokenizer, template, f"{name}:base")
    if full_model:
        return LoadedModel(_load_weights(weights, policy, trust), tokenizer, template, name)
    return LoadedModel(load_adapter(base_path, weights, policy, trust, merge), tokenizer, template, name)


def load_adapter(base_path: Path, adapter: Path, policy: LoadPolicy, trust: bool = False, merge: bool = True):
    """Base + LoRA adapter; merged in fp32 then cast to the policy's dtype (or kept as a peft model)."""
    import torch
    from peft import PeftModel

    base = load_model(base_path, torch.float32 if merge else policy.torch_dtype, trust)
    model = PeftModel.from_pretrained(base, adapter, is_trainable=False)
    if merge:
        model = model.merge_and_unload()
    return model.to(device=policy.device, dtype=policy.torch_dtype).eval()


def _load_weights(path: Path, policy: LoadPolicy, trust: bool):
    return load_model(path, policy.torch_dtype, trust).to(policy.device).eval()


def _saved_template(folder: Path) -> Template | None:
    path = folder / TEMPLATE_FILE
    return Template.load(path) if path.is_file() else None
