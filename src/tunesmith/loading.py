"""Load a model *for use* (eval, chat, generate, serve, export) with the template it was trained with.

A target is a run directory (base + adapter, or a full model), a merged export folder, or any
`model:` value (hub id, folder, .gguf, embedded default). For a run directory the template
recorded at training time is always the one applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tunesmith import trust
from tunesmith.data.templates import Template, resolve_template
from tunesmith.errors import TunesmithError
from tunesmith.models import load_model, load_tokenizer, resolve_model
from tunesmith.runs import RunDir

TEMPLATE_FILE = "template.json"


@dataclass
class LoadedModel:
    model: Any  # a transformers (or peft) causal LM, in eval mode
    tokenizer: Any
    template: Template
    name: str  # what /v1/models and reports call it


def is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file() and RunDir(path).final_weights() is not None


def load_for_use(
    target: str | Path,
    *,
    dtype=None,
    trust_remote_code: bool | None = None,
    base_only: bool = False,
    device: str | None = None,
    merge_adapter: bool = False,
) -> LoadedModel:
    """Load whatever `target` names.

    Args:
        trust_remote_code: allow the model's own code to run; None = as the command line says
            (tunesmith.trust). Never taken from a run directory's config.yaml.
        base_only: a run directory gives its untuned base model (same template).
        device: None keeps the model where transformers put it (CPU); "auto" picks the GPU when
            there is one (bf16/fp16 there, fp32 on CPU); or a torch device string.
        merge_adapter: fold a LoRA adapter into the base weights after loading (faster to run;
            the result is a plain transformers model).
    """
    path = Path(target).expanduser()
    trust_remote_code = trust.allowed() if trust_remote_code is None else trust_remote_code
    if path.is_dir() and (path / "config.yaml").is_file():
        loaded = _load_run(RunDir(path), dtype, trust_remote_code, base_only, device)
    elif path.is_dir() and (path / "adapter_config.json").is_file():
        raise TunesmithError(f"{path} is an adapter folder: pass its run directory instead")
    else:
        loaded = _load_model_spec(str(target), dtype, trust_remote_code, device)
    if merge_adapter and hasattr(loaded.model, "merge_and_unload"):
        loaded.model = loaded.model.merge_and_unload().eval()
    return loaded


def pick_device(device: str | None, dtype=None) -> tuple[str | None, Any]:
    """Resolve device="auto" to a torch device and a dtype that suits it (an explicit dtype wins)."""
    if device != "auto":
        return device, dtype
    import torch

    if torch.cuda.is_available():
        return "cuda", dtype or (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return "cpu", dtype or torch.float32


def _load_model_spec(spec: str, dtype, trust: bool, device: str | None) -> LoadedModel:
    resolved = resolve_model(spec)
    tokenizer = load_tokenizer(resolved.path, trust)
    template = _saved_template(resolved.path) or resolve_template("auto", tokenizer)
    model = _load_weights(resolved.path, dtype, trust, device)
    local = Path(spec).expanduser().resolve()
    name = {"folder": local.name, "gguf": local.stem}.get(resolved.kind, resolved.spec)
    return LoadedModel(model, tokenizer, template, name)


def _load_run(run: RunDir, dtype, trusted: bool, base_only: bool, device: str | None) -> LoadedModel:
    raw = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or not raw.get("model"):
        raise TunesmithError(f"{run.config}: no 'model' key; is this a tunesmith run directory?")
    weights = run.final_weights()
    if weights is None and not base_only:
        raise TunesmithError(f"{run.root} has no trained weights yet (adapter/ or model/): run `tunesmith train` first")
    full_model = weights is not None and not (weights / "adapter_config.json").is_file()
    base_path = None if full_model and not base_only else resolve_model(str(raw["model"])).path
    has_tokenizer = weights is not None and (weights / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(weights if has_tokenizer else base_path, trusted)
    template = (weights and _saved_template(weights)) or _saved_template(run.data)
    if template is None:
        data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
        template = resolve_template(data.get("template", "auto"), tokenizer)
    name = run.root.resolve().name
    if base_only:
        return LoadedModel(_load_weights(base_path, dtype, trusted, device), tokenizer, template, f"{name}:base")
    if full_model:
        return LoadedModel(_load_weights(weights, dtype, trusted, device), tokenizer, template, name)
    from peft import PeftModel

    base = _load_weights(base_path, dtype, trusted, device)
    model = PeftModel.from_pretrained(base, weights, is_trainable=False)
    return LoadedModel(model.eval(), tokenizer, template, name)


def _load_weights(path: Path, dtype, trust: bool, device: str | None):
    device, dtype = pick_device(device, dtype)
    model = load_model(path, dtype, trust)
    return (model.to(device) if device else model).eval()


def _saved_template(folder: Path) -> Template | None:
    path = folder / TEMPLATE_FILE
    return Template.load(path) if path.is_file() else None
