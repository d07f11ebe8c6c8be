"""The module a training step calls: model + loss in one forward, so DDP and FSDP can wrap it whole."""

from __future__ import annotations

import torch
from torch import nn

from tunesmith.train.attention import SHORT_MAX_WIDTH, attention_for, kernel_choice, use_attention
from tunesmith.train.loss import IGNORE_INDEX, completion_loss, summed_cross_entropy
from tunesmith.train.methods import causal_lm

# config attributes that post-process logits; the fused head below would skip them
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


class Objective(nn.Module):
    """forward(input_ids, labels, position_ids) -> (sum of token losses, number of trained targets)."""

    def __init__(
        self, model: nn.Module, device: str | None = None, compiled_loss: bool = False, short_max: int = SHORT_MAX_WIDTH
    ):
        super().__init__()
        self.model = model  # a transformers causal LM, or a peft model around one
        lm = causal_lm(model)
        self.loaded_attention = lm.config._attn_implementation
        self.device = device  # where batches run: picks the attention kernel per batch width (None: never switch)
        self.short_max = short_max  # the widest batch that runs the CPU short-row kernel (attention.py)
        self._no_split_modules = getattr(lm, "_no_split_modules", None)  # FSDP wraps these layers
        self.fused = fused_head_supported(lm)
        self.compiled_loss = compiled_loss  # the fused head's per-block softmax as one compiled kernel

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor | None = None):
        lm = causal_lm(self.model)
        if self.device is not None:
            use_attention(lm, self.kernel_for(input_ids.shape[1]))
        if self.fused:
            # hidden states only; lm_head + CE run at trained positions, in chunks
            hidden = lm.get_decoder()(input_ids=input_ids, position_ids=position_ids, use_cache=False)
            head = lm.get_output_embeddings().weight
            return completion_loss(hidden.last_hidden_state, head, labels, compiled=self.compiled_loss)
        logits = self.model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits  # [B, T, V]
        targets = labels[:, 1:]
        return summed_cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten()), (targets != IGNORE_INDEX).sum()


    def kernel_for(self, width: int) -> str:
        return attention_for(width, self.device, self.loaded_attention, self.short_max)


def fused_head_supported(lm: nn.Module) -> bool:
    """True when logits are exactly `lm_head(decoder(x))`: a plain bias-free Linear, no post-processing."""
    head = lm.get_output_embeddings()
    config = getattr(lm, "config", None)
    transforms = any(getattr(config, name, None) not in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS)
    try:
        lm.get_decoder()
    except (AttributeError, ValueError):
        return False
    return type(head) is nn.Linear and head.bias is None and not transforms


def make_objective(model: nn.Module, settings, device: str | None = None, compiled: bool = False) -> nn.Module:
    """The module a step calls for `settings.objective` (settings: config.TrainConfig)."""
    short_max = kernel_choice(settings.attention, settings.short_rows_max_width, device or "")[1]
    if settings.objective == "sft":
        return Objective(model, device, compiled_loss=compiled, short_max=short_max)
    from tunesmith.train.preference import PreferenceObjective

    return PreferenceObjective(model, settings.objective, settings.preference, device, short_max=short_max)
