"""What this machine can do: device, numeric precision, and how the weights are held in memory."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tunesmith.errors import TunesmithError
from tunesmith.precision import bf16_native

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass(frozen=True)
class Precision:
    """How a run computes.

    compute: the dtype matmuls run in (bf16, fp16 or fp32).
    frozen_weights: the dtype the frozen base weights are stored in. For LoRA on bf16 hardware
        they are stored in bf16, so autocast has nothing to re-cast each step; trainable weights
        (adapters, or all weights in full fine-tuning) stay fp32 masters.
    autocast: whether forward passes run under torch.autocast (mixed precision).
    """

    compute: str
    frozen_weights: str
    autocast: bool


def device_type() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matmuls run natively (several times fp32 speed)."""
    return bf16_native("cpu")


def resolve_precision(requested: str, method: str, device: str | None = None) -> Precision:
    """`train.precision` -> Precision for this device and method."""
    device = device or device_type()
    compute = _compute_dtype(requested, device)
    if compute == "fp32":
        return Precision("fp32", "fp32", autocast=False)
    if method == "qlora":
        return Precision(compute, "nf4", autocast=True)
    if method == "lora" and compute == "bf16":
        # frozen base stored in bf16: no per-step casts of it; fp32 LoRA weights are cast by autocast
        return Precision("bf16", "bf16", autocast=True)
    return Precision(compute, "fp32", autocast=True)  # full fine-tuning keeps fp32 masters


def _compute_dtype(requested: str, device: str) -> str:
    if requested == "auto":
        if device == "cuda":
            return "bf16" if bf16_native("cuda") else "fp16"
        return "bf16" if cpu_has_bf16() else "fp32"
    if requested == "fp16" and device == "cpu":
        raise TunesmithError("train.precision: fp16 needs a GPU; on a CPU use bf16 (or auto, or fp32)")
    if requested == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise TunesmithError("train.precision: this GPU has no bf16; use fp16 (or auto)")
    return requested


def check_method(method: str) -> None:
    """QLoRA needs bitsandbytes (its 4-bit path runs on CUDA and, from 0.48, on a CPU); say so before loading."""
    if method != "qlora":
        return
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise TunesmithError(
            "train.method: qlora needs bitsandbytes: run `pip install 'tunesmith[qlora]'` "
            "(or use train.method: lora, which trains the same adapter on full-precision weights)"
        ) from None
