"""The learning rate as a pure function of the step: nothing to save, nothing to drift on resume."""

from __future__ import annotations

import math


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio)


def learning_rate(step: int, *, peak: float, total_steps: int, warmup: int, kind: str) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine/linear/constant decay."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if kind == "constant":
        return peak
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if kind == "linear":
        return peak * (1.0 - progress)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
