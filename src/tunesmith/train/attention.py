"""Which attention kernel a training batch uses, chosen by its width, and the CPU kernel for short rows.

On a CPU, SDPA's fused kernel has a fast forward but a slow backward for short rows, and plain
matmul-softmax-matmul ("eager") attention keeps every layer's [T, T] probabilities. The short-row
kernel takes SDPA's fused forward, which also returns the softmax's log-sum-exp, and a backward of
plain matmuls that recomputes the probabilities from it (the flash-attention backward as tensor
ops that torch.compile fuses). It keeps only the output and the log-sum-exp, and never repeats the
key/value heads of grouped-query attention. Its causal matmuls do not skip the masked half, so wide
batches run SDPA (train.attention and train.short_rows_max_width; measurements in bench/README.md).
"""

from __future__ import annotations

import sys

import torch
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

from tunesmith.config import TrainConfig

SHORT_MAX_WIDTH = TrainConfig.model_fields["short_rows_max_width"].default
SHORT_ROW_KERNEL = "tunesmith_short_rows"


def kernel_choice(setting: str, short_rows_max_width: int, device: str) -> tuple[str, int]:
    """train.attention -> (the kernel the model is loaded with, the widest batch that runs SHORT_ROW_KERNEL)."""
    loaded = "eager" if setting == "eager" else "sdpa"
    if device != "cpu" or setting in ("sdpa", "eager"):
        return loaded, 0
    return loaded, sys.maxsize if setting == "short_rows" else short_rows_max_width


def attention_for(width: int, device: str, loaded: str = "sdpa", short_max: int = SHORT_MAX_WIDTH) -> str:
    """The kernel a batch `width` tokens wide runs with on `device`, for a model loaded with `loaded`."""
    if device == "cpu" and loaded == "sdpa" and width <= short_max:
        return SHORT_ROW_KERNEL
    return loaded


def use_attention(lm: nn.Module, kind: str) -> None:
    """Switch the model's attention kernel between forward passes (every layer reads the config)."""
    if lm.config._attn_implementation != kind:
        lm.config._attn_implementation = kind


class _FlashForwardMatmulBackward(torch.autograd.Function):
    """softmax(q k^T * scale + mask) v for q [B, H, T, D] and k, v [B, KV, S, D], H a multiple of KV
    (grouped-query attention: each key/value head serves H / KV consecutive query heads)."""

    @staticmethod
    def forward(ctx, q, k, v, mask, scale, causal):
        if mask is not None and mask.dtype == torch.bool:  # the fused kernel takes an additive mask
            mask = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
        elif mask is not None:
            mask = mask.to(q.dtype)
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, causal, attn_mask=mask, scale=scale
        )
        ctx.save_for_backward(q, k, v, out, lse, mask)
        ctx.scale, ctx.causal = scale, causal
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse, mask = ctx.saved_tensors
        (b, heads, t, d), kv, s = q.shape, k.shape[1], k.shape[2]
        groups = heads // kv
        # a group's query heads stacked along the rows: [B, KV, G*T, D] views, so that each matmul
        # runs once per key/value head and sums over the group by itself (no repeated k, v)
        q_rows, grad_rows = q.reshape(b, kv, groups * t, d), grad_out.reshape(b, kv, groups * t, d)
        scores = (q_rows @ k.transpose(-1, -2)).float().view(b, kv, groups, t, s) * ctx.scale
        if mask is not None:  # [B or 1, 1 or H, T, S]
            shared = mask.shape[1] == 1
            scores = scores + (mask[:, :, None] if shared else mask.reshape(mask.shape[0], kv, groups, t, s))
        elif ctx.causal:
            above = torch.ones(t, s, dtype=torch.bool, device=q.device).triu(1)
            scores = scores.masked_fill(above, float("-inf"))
        lse = torch.where(torch.isfinite(lse), lse, float("inf"))  # a row that sees nothing: probabilities 0
        probs = torch.exp(scores - lse.float().view(b, kv, groups, t, 1))
        # d softmax: P * (dP - rowsum(dO * O)), with dP = dO v^T
        delta = (grad_out.float() * out.float()).sum(-1).view(b, kv, groups, t, 1)
        grad_probs = (grad_rows @ v.transpose(-1, -2)).float().view(probs.shape)
        grad_scores = (probs * (grad_probs - delta) * ctx.scale).to(q.dtype).view(b, kv, groups * t, s)
        grad_v = probs.to(q.dtype).view(b, kv, groups * t, s).transpose(-1, -2) @ grad_rows
        grad_q = (grad_scores @ k).view(b, heads, t, d)
        return grad_q, grad_scores.transpose(-1, -2) @ q_rows, grad_v, None, None, None


def short_row_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """A transformers attention function (registered as SHORT_ROW_KERNEL); [B, H, T, D] in, [B, T, H, D] out."""
    if dropout > 0 or kwargs.get("softcap") is not None or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    if torch.is_autocast_enabled("cpu"):  # as autocast does for SDPA: q and k leave rotary in fp32, v does not
        dtype = torch.get_autocast_dtype("cpu")
        query, key, value = query.to(dtype), key.to(dtype), value.to(dtype)
    causal = attention_mask is None and query.shape[2] > 1 and getattr(module, "is_causal", True)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    out = _FlashForwardMatmulBackward.apply(query, key, value, attention_mask, scale, causal)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(SHORT_ROW_KERNEL, short_row_attention)
AttentionMaskInterface.register(SHORT_ROW_KERNEL, sdpa_mask)  # None when plainly causal, else a boolean mask
