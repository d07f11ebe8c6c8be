"""The one load policy: which device and dtype a model is run in, for every command that runs one.

eval, compare, check, chat, generate and serve all call `load_policy(requested)`; `requested` is
`eval.dtype` (config) or `--dtype` (command line), "auto" by default:

- GPU: bf16 if it computes bf16, else fp16;
- CPU: bf16 if it computes bf16 natively (AVX-512 BF16 or AMX), else fp32 (emulated bf16 is
  slower than fp32).

`bf16_native` is the one bf16-capability rule; training's `train.precision: auto` uses it too.
A LoRA adapter is always merged into fp32 base weights first and the result cast to the chosen
dtype, so every command (and the merged export, loaded in the same dtype) runs the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from tunesmith.errors import TunesmithError

DTYPE_NAMES = ("auto", "bf16", "fp16", "fp32")


def device_type() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=2)
def bf16_native(device: str) -> bool:
    """Whether `device` ("cpu" or "cuda") computes bf16 natively (not emulated)."""
    import torch

    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


@dataclass(frozen=True)
class LoadPolicy:
    device: str  # cpu | cuda
    dtype: str  # bf16 | fp16 | fp32
    reason: str  # why this dtype

    @property
    def torch_dtype(self):
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.dtype]

    def describe(self) -> str:
        return f"{self.dtype} on {self.device.upper()} ({self.reason})"

    def as_dict(self) -> dict:
        return {"device": self.device, "dtype": self.dtype, "reason": self.reason}


def auto_dtype(device: str) -> str:
    if bf16_native(device):
        return "bf16"
    return "fp16" if device == "cuda" else "fp32"


def load_policy(requested: str = "auto", device: str | None = None, *, where: str = "--dtype") -> LoadPolicy:
    """The device and dtype to run a model in; `where` names the setting in error messages."""
    device = device or device_type()
    if requested not in DTYPE_NAMES:
        raise TunesmithError(f"{where}: unknown dtype {requested!r}; choose one of {', '.join(DTYPE_NAMES)}")
    if requested == "auto":
        dtype = auto_dtype(device)
        native = "computes bf16 natively" if dtype == "bf16" else "has no native bf16"
        return LoadPolicy(device, dtype, f"auto: the {device.upper()} {native}")
    if requested == "fp16" and device == "cpu":
        raise TunesmithError(f"{where}: fp16 needs a GPU; on a CPU use bf16, fp32 or auto")
    if requested == "bf16" and device == "cuda" and not bf16_native("cuda"):
        raise TunesmithError(f"{where}: this GPU has no bf16; use fp16, fp32 or auto")
    return LoadPolicy(device, requested, f"set by {where}")
