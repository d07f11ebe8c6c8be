"""NEFTune (Jain et al. 2023): uniform noise on the input embeddings while training.

noise ~ U(-1, 1) * alpha / sqrt(T * H) for a batch of width T and hidden size H, as in the paper and
transformers' Trainer. Only in a training forward that builds gradients: evaluation, generation and
DPO's reference forward (run without gradients) see the embeddings as they are. The noise is drawn from
torch's global generator, which checkpoints save and restore, so a resumed run draws the same noise.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tunesmith.train.methods import causal_lm


def add_neftune(model: nn.Module, alpha: float):
    """Hook the noise onto the model's input embeddings; returns the hook handle (`.remove()` it after)."""
    embeddings = causal_lm(model).get_input_embeddings()

    def noisy(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        if not (module.training and torch.is_grad_enabled()):
            return output
        scale = alpha / math.sqrt(output.shape[-2] * output.shape[-1])
        return output + torch.empty_like(output).uniform_(-scale, scale)

    return embeddings.register_forward_hook(noisy)
