"""The module a training step calls: model + loss in one forward, so DDP and FSDP can wrap it whole."""

from __future__ import annotations

import sys

import torch
import torch.fx.experimental._config as fx_config
from torch import nn

from tunesmith.train.attention import SHORT_MAX_WIDTH, attention_for, kernel_choice, use_attention
from tunesmith.train.loss import IGNORE_INDEX, completion_loss, summed_cross_entropy
from tunesmith.train.methods import causal_lm
from tunesmith.train.shared_prefix import KERNELS, decode_with_shared_prefix, shared_prefix

# config attributes that post-process logits; the fused head below would skip them
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


class Objective(nn.Module):
    """forward(input_ids, labels, position_ids) -> (sum of token losses, number of trained targets)."""

    def __init__(
        self,
        model: nn.Module,
        device: str | None = None,
        compiled_loss: bool = False,
        short_max: int = SHORT_MAX_WIDTH,
        share_prefix: bool = False,
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
        self.share_prefix = share_prefix and self.fused  # rows' common untrained prefix run once (shared_prefix.py)
        # the shared-prefix mask is plainly causal: wider batches of a sliding-window model run unshared
        self.window = getattr(lm.config, "sliding_window", None) or sys.maxsize

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor | None = None):
        # compiled layers see sizes as symbols; "duck" sizing would give a length that happens to equal the
        # hidden size (576 = 24 + 8 x 69 in the quickstart) that size's symbol and specialise it: a recompile
        with fx_config.patch(use_duck_shape=False):
            return self._forward(input_ids, labels, position_ids)

    def _forward(self, input_ids: torch.Tensor, labels: torch.Tensor, position_ids: torch.Tensor | None):
        lm = causal_lm(self.model)
        shared = 0
        if self.device is not None:
            kernel = self.kernel_for(input_ids.shape[1])
            if self.share_prefix and position_ids is None and kernel in KERNELS and input_ids.shape[1] <= self.window:
                shared = shared_prefix(input_ids, labels)
            use_attention(lm, KERNELS[kernel] if shared else kernel)
        if self.fused:
            # hidden states only; lm_head + CE run at trained positions, in chunks
            head = lm.get_output_embeddings().weight
            if shared:
                hidden = decode_with_shared_prefix(lm.get_decoder(), input_ids, shared)
                return completion_loss(hidden, head, labels[:, shared:], compiled=self.compiled_loss)
            hidden = lm.get_decoder()(input_ids=input_ids, position_ids=position_ids, use_cache=False)
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
        return Objective(model, device, compiled_loss=compiled, short_max=short_max, share_prefix=settings.share_prefix)
    from tunesmith.train.preference import PreferenceObjective

    return PreferenceObjective(model, settings.objective, settings.preference, device, short_max=short_max)
