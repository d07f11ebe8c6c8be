"""Which attention kernel a training batch uses, chosen by its width.

On a CPU, torch's fused SDPA kernel is slow in the backward pass for short rows: for SmolLM2-135M
at batch 8 x 190 tokens (LoRA, bf16, compiled layers, 2 cores) it took 31% of the step, and the
plain matmul-softmax-matmul ("eager") attention made the whole step 1.4x faster. Eager keeps each
layer's [T, T] attention probabilities for the backward pass and loses above a few hundred
tokens, so batches wider than EAGER_MAX_WIDTH keep SDPA. On a GPU, SDPA (flash) always wins.
Batches are grouped by length, so most steps of a typical instruction dataset are short.
"""

from __future__ import annotations

from torch import nn

EAGER_MAX_WIDTH = 256  # tokens; measured cross-over on the CPU above is between 300 and 500


def attention_for(width: int, device: str, loaded: str = "sdpa") -> str:
    """The kernel a batch `width` tokens wide runs with on `device`, for a model loaded with `loaded`."""
    if device == "cpu" and loaded == "sdpa" and width <= EAGER_MAX_WIDTH:
        return "eager"
    return loaded


def use_attention(lm: nn.Module, kind: str) -> None:
    """Switch the model's attention kernel between forward passes (every layer reads the config)."""
    if lm.config._attn_implementation != kind:
        lm.config._attn_implementation = kind
