"""Turn a base model into something to train: LoRA adapters (peft), all weights, or QLoRA."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from tunesmith.config import LoraConfig
from tunesmith.errors import TunesmithError
from tunesmith.models import load_model, unwrap_peft
from tunesmith.train.dropout import speed_up_lora_dropout
from tunesmith.train.hardware import DTYPES, Precision


def load_base(
    path: Path, method: str, precision: Precision, attention: str, trust_remote_code: bool = False
) -> nn.Module:
    """The base causal LM, its weights in the dtype `precision` keeps them in."""
    if method == "qlora":
        return _load_4bit(path, precision, attention, trust_remote_code)
    loaded = "fp32" if precision.master_weights else precision.frozen_weights  # masters: fp32, rounded in fit
    model = load_model(path, DTYPES[loaded], trust_remote_code)
    model.set_attn_implementation(attention)
    return model


def prepare_for_training(
    model: nn.Module, method: str, lora: LoraConfig, seed: int, autocast: bool = False
) -> nn.Module:
    """Attach adapters (lora, qlora) or unfreeze everything (full); the seed fixes adapter init.
    Full fine-tuning trains the weights in the dtype they were loaded in (Precision.frozen_weights)."""
    model.config.use_cache = False
    if method == "full":
        model.requires_grad_(True)
        return model
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return add_lora(model, lora, seed, autocast)


def enable_checkpointing(model: nn.Module) -> None:
    """Recompute each layer in the backward pass instead of keeping its activations."""
    lm = causal_lm(model)
    if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5.2x
        lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def compile_layers(model: nn.Module) -> bool:
    """torch.compile each decoder layer in place (parameter names unchanged, so checkpoints and
    saved weights are the same as without). Shapes are marked dynamic: batches vary in length.
    A model whose layers are not found is left as it is; returns whether anything was compiled.

    Where the input embeddings are frozen (LoRA), the first layer's input needs no gradient while every
    other layer's does: compiled, it would take a graph of its own (~8 s to compile on a 2-core CPU) to
    save under 1% of a step, so it runs eagerly."""
    try:
        decoder = causal_lm(model).get_decoder()
        layers = list(decoder.layers)
    except (AttributeError, ValueError, TypeError):
        return False
    if not decoder.get_input_embeddings().weight.requires_grad and len(layers) > 1:
        layers = layers[1:]
    for layer in layers:
        layer.compile(dynamic=True)
    return True


def add_lora(model: nn.Module, lora: LoraConfig, seed: int, autocast: bool = False) -> nn.Module:
    """peft LoRA adapters (fp32 weights). Under autocast, activations stay in the compute dtype:
    peft would otherwise copy every adapter input to fp32 and every output back (~10% of a step)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        use_dora=lora.use_dora,
        use_rslora=lora.use_rslora,
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    try:
        model = get_peft_model(model, config)  # adapter weights in fp32 even on a bf16 base
    except ValueError as err:
        names = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise TunesmithError(
            f"train.lora.target_modules: {lora.target_modules!r} does not fit this model ({err}); "
            f"use 'all-linear' or some of: {', '.join(names)}"
        ) from None
    if autocast:
        for module in model.modules():
            if hasattr(module, "lora_A"):
                module.cast_input_dtype_enabled = False  # read by peft's LoRA layers
    speed_up_lora_dropout(model)
    return model


def _load_4bit(path: Path, precision: Precision, attention: str, trust_remote_code: bool) -> nn.Module:
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=DTYPES[precision.compute],
    )
    try:
        return AutoModelForCausalLM.from_pretrained(
            path,
            quantization_config=quantization,
            dtype=DTYPES[precision.compute],
            use_safetensors=True,
            attn_implementation=attention,
            trust_remote_code=trust_remote_code,
            device_map={"": torch.cuda.current_device() if torch.cuda.is_available() else "cpu"},
        )
    except Exception as err:  # noqa: BLE001 - any failure here is the user's model or setup
        raise TunesmithError(f"model: cannot load {path} in 4 bits for qlora ({type(err).__name__}: {err})") from None


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights counted once."""
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def bytes_off_device(model: nn.Module, device: str) -> int:
    """Bytes of the model's weights and buffers not on `device` ("cpu" or "cuda") yet."""
    if device == "cpu":
        return 0
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors if t.device.type != device)


causal_lm = unwrap_peft  # the one peft-unwrap helper (models.py)
