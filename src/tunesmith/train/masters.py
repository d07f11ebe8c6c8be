"""Full fine-tuning in bf16 with fp32 master weights (train.full_weights: bf16-master).

The model's weights are held in bf16, so forward and backward run without autocast and no weight
is cast in a step. AdamW updates fp32 copies of them, the masters:
- backward: as soon as a weight's bf16 gradient is complete, it is added into its master's fp32
  gradient and freed (micro-batches accumulate in fp32);
- clip and step: on the masters' fp32 gradients (bf16 has fp32's exponent range: no loss scale);
- after the step each master is rounded into its bf16 weight.
The model arrives with fp32 weights (the checkpoint's values, which need not lie on bf16's grid):
they are copied into the masters before the weights are rounded to bf16, so the masters start where
fp32-autocast's weights do. Were they taken from bf16-rounded weights, each master would sit exactly
on a rounding point and the small updates of fine-tuning (lr x ~1 per step with Adam) would leave
the bf16 weights unchanged for many steps.
Checkpoints hold the masters (so a resumed run continues from the same numbers), and when training
ends the masters become the model's weights: the saved model is fp32, as with fp32-autocast.
Tied weights (lm_head = embed_tokens) are one parameter, so they have one master.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


class MasterWeights:
    """fp32 masters of a model's trainable weights, with the names `names` gives those weights;
    the weights themselves are then held in `dtype`."""

    def __init__(self, model: nn.Module, names: dict[int, str], dtype: torch.dtype = torch.bfloat16):
        self.weights = [p for p in model.parameters() if p.requires_grad]  # tied weights once
        self.params = [nn.Parameter(p.detach().to(torch.float32)) for p in self.weights]  # fp32 in: no copy
        for weight in self.weights:
            weight.data = weight.data.to(dtype)  # new storage, same Parameter (names, ties, hooks), rounded
        self.names = {id(master): names[id(p)] for p, master in zip(self.weights, self.params, strict=True)}
        self._hooks = [
            p.register_post_accumulate_grad_hook(functools.partial(_accumulate, master))
            for p, master in zip(self.weights, self.params, strict=True)
        ]

    def copy_to_model(self) -> None:
        """Round each master into its bf16 weight (after an optimizer step or a restore)."""
        with torch.no_grad():
            for weight, master in zip(self.weights, self.params, strict=True):
                weight.copy_(master)

    def state(self) -> dict[str, torch.Tensor]:
        """The masters by parameter name, on the CPU: what a checkpoint saves."""
        return {self.names[id(m)]: m.detach().to("cpu").contiguous() for m in self.params}

    def load(self, weights: dict[str, torch.Tensor]) -> None:
        """Set the masters from a checkpoint's `state()`, and the bf16 weights from them."""
        missing = [name for name in self.names.values() if name not in weights]
        if missing:
            raise ValueError(f"checkpoint lacks {len(missing)} trainable tensors, e.g. {missing[0]}")
        with torch.no_grad():
            for master in self.params:
                master.copy_(weights[self.names[id(master)]])
        self.copy_to_model()

    def into_model(self) -> None:
        """End of training: the model's weights become the fp32 masters (the bf16 copies are freed)."""
        for hook in self._hooks:
            hook.remove()
        for weight, master in zip(self.weights, self.params, strict=True):
            weight.data = master.detach()


def _accumulate(master: nn.Parameter, weight: torch.Tensor) -> None:
    """Post-accumulate-grad hook: move the weight's bf16 gradient into its master's fp32 gradient."""
    if master.grad is None:
        master.grad = weight.grad.to(torch.float32)
    else:
        master.grad.add_(weight.grad)
    weight.grad = None
