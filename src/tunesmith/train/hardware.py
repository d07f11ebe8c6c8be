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
    frozen_weights: the dtype the model's weights are held in while training. For LoRA on bf16
        hardware the frozen base is stored in bf16, so autocast has nothing to re-cast each step;
        adapters stay fp32. Full fine-tuning holds every weight in fp32 under autocast, or in bf16
        with master_weights (loaded in fp32, copied to the masters, then rounded).
    autocast: whether forward passes run under torch.autocast (mixed precision).
    master_weights: full fine-tuning with bf16 weights whose fp32 copies the optimizer steps
        (train.full_weights: bf16-master; train/masters.py).
    """

    compute: str
    frozen_weights: str
    autocast: bool
    master_weights: bool = False

    def describe(self, method: str) -> str:
        """The weights' dtypes in words, for the training header."""
        if self.master_weights:
            return f"{self.frozen_weights} weights, fp32 master weights in the optimizer"
        held = "weights" if method == "full" else "frozen weights"
        return f"{held} {self.frozen_weights}" + (", autocast" if self.autocast else "")

    def as_dict(self) -> dict:
        """As recorded in train_info.json."""
        return {"compute": self.compute, "frozen_weights": self.frozen_weights, "autocast": self.autocast,
                "master_weights": "fp32" if self.master_weights else None}


def device_type() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matmuls run natively (several times fp32 speed)."""
    return bf16_native("cpu")


def resolve_precision(
    requested: str, method: str, device: str | None = None, full_weights: str = "auto", processes: int = 1
) -> Precision:
    """`train.precision` (and, for full fine-tuning, `train.full_weights`) -> Precision for this device and method."""
    device = device or device_type()
    compute = _compute_dtype(requested, device)
    if method == "full" and _bf16_master(full_weights, compute, processes):
        return Precision("bf16", "bf16", autocast=False, master_weights=True)
    if compute == "fp32":
        return Precision("fp32", "fp32", autocast=False)
    if method == "qlora":
        return Precision(compute, "nf4", autocast=True)
    if method == "lora" and compute == "bf16":
        # frozen base stored in bf16: no per-step casts of it; fp32 LoRA weights are cast by autocast
        return Precision("bf16", "bf16", autocast=True)
    return Precision(compute, "fp32", autocast=True)  # full fine-tuning, fp32-autocast: fp32 weights


def _bf16_master(full_weights: str, compute: str, processes: int) -> bool:
    """train.full_weights: bf16-master only when asked for ('auto' = fp32-autocast: on a 2-core CPU
    bf16-master stepped 0.93x as fast with 5% more memory, bench/README.md)."""
    if full_weights != "bf16-master":
        return False
    fits = compute == "bf16" and processes == 1
    if not fits:
        why = f"train.precision is {compute} here" if compute != "bf16" else f"this run has {processes} processes"
        raise TunesmithError(
            f"train.full_weights: bf16-master needs bf16 compute in one process, and {why}; "
            "use full_weights: fp32-autocast (or auto)"
        )
    return fits


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
