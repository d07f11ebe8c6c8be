"""Dropout for LoRA inputs that spends less time drawing random numbers.

On a CPU, torch's dropout draws one 32-bit random number per element, and that, not the arithmetic,
dominates a LoRA step. Here one 64-bit draw serves four elements: each 16-bit slice is compared with
a threshold, so an element is kept with probability 1 - p (p rounded to a multiple of 1/65536).
Inside a torch.compile'd layer that int64 -> int16 view turns into scalar loops, so there the 16
bits come from an integer hash of each element's index and one random seed per call, which inductor
vectorises and fuses into the kernels around it. (Measurements: bench/README.md.)
"""

from __future__ import annotations

import torch
from torch import nn

_LEVELS = 1 << 16


class FastDropout(nn.Module):
    """Inverted dropout: zero each element with probability p, scale the rest by 1 / (1 - p)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self._threshold = int(round(p * _LEVELS)) - _LEVELS // 2  # int16 values below it are dropped
        # an input of its own to the seed op, so that a compiled graph never merges two dropouts' seeds
        self.register_buffer("_seed_key", torch.zeros((), dtype=torch.int32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if torch.compiler.is_compiling():
            keep = _hashed_keep(x, _draw_seed(x, self._seed_key), self._threshold)
            return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))
        draws = torch.randint(-(2**63), 2**63 - 1, ((x.numel() + 3) // 4,), dtype=torch.int64, device=x.device)
        keep = draws.view(torch.int16)[: x.numel()].view(x.shape) >= self._threshold
        mask = keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))  # saved for the backward pass
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


@torch.library.custom_op(
    "tunesmith::dropout_seed", mutates_args=(), tags=(torch.Tag.nondeterministic_seeded,)
)
def _draw_seed(like: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """One random int32 seed on `like`'s device. An op of its own, so inductor runs it once per call:
    a plain randint gets inlined into the kernel loop and redrawn for every 16 elements. `key` is
    only there to tell two dropouts apart (the compiler merges identical calls, random or not)."""
    return torch.randint(0, 2**31, (), dtype=torch.int32, device=like.device)


@_draw_seed.register_fake
def _(like: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    return like.new_empty((), dtype=torch.int32)


def _hashed_keep(x: torch.Tensor, seed: torch.Tensor, threshold: int) -> torch.Tensor:
    """The keep mask from a hash of (element index, seed): 16 bits per element, as the draws above."""
    index = torch.arange(x.numel(), device=x.device)  # int64; int32 below wraps past 2**32 elements
    bits = _mix32(index.to(torch.int32).view(x.shape) ^ seed) & 0xFFFF
    return bits - _LEVELS // 2 >= threshold


def _mix32(h: torch.Tensor) -> torch.Tensor:
    """Wellons' lowbias32 integer hash on int32, whose products wrap as in two's complement; the
    masks after each right shift make it the logical shift the hash is defined with."""
    h = h ^ ((h >> 16) & 0xFFFF)
    h = h * 0x21F0AAAD
    h = h ^ ((h >> 15) & 0x1FFFF)
    h = h * 0x735A2D97
    return h ^ ((h >> 15) & 0x1FFFF)


def speed_up_lora_dropout(model: nn.Module) -> int:
    """Swap peft's nn.Dropout on LoRA inputs for FastDropout; returns how many were swapped."""
    swapped = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, nn.ModuleDict):
            continue
        for name, dropout in list(dropouts.items()):
            if type(dropout) is nn.Dropout and dropout.p > 0:
                dropouts[name] = FastDropout(dropout.p)
                swapped += 1
    return swapped
