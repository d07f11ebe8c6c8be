"""The tokens every row of a micro-batch begins with, run once instead of once per row.

Chat rows start alike: the template's default system prompt and the user turn's header are the
same ~25 tokens in every row (a third of a short FAQ row). Where that shared prefix carries no
trained target, the micro-batch [B, T] runs as one sequence [1, P + B*(T-P)]: the prefix once,
then each row's remaining tokens, with the positions each would have had. Projections and MLPs
see every prefix token once; attention (`shared_prefix_attention`) gives each row's tokens the
prefix's keys and values (expanded views, so backward sums every row's gradient into the one
prefix) followed by the row's own, causally. The loss and every gradient are those of the rows
run whole.

The layout reaches the attention function through the shape of the 4D mask that transformers passes
on unchanged, [B, 1, T-P, T]: no Python state per layer, so one compiled graph serves every layer
(a key/value cache, indexed by layer, made torch.compile specialise each layer and give up).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

from tunesmith.data.tokenize import IGNORE_INDEX
from tunesmith.train.attention import SHORT_ROW_KERNEL, short_row_attention

MIN_SHARED = 8  # tokens: below this the saving is smaller than the split attention's extra work
# the kernels a shared-prefix batch runs with, by the kernel the same batch would run unshared
KERNELS = {SHORT_ROW_KERNEL: "tunesmith_shared_prefix", "sdpa": "tunesmith_shared_prefix_sdpa"}


def shared_prefix(input_ids: torch.Tensor, labels: torch.Tensor, minimum: int = MIN_SHARED) -> int:
    """How many leading tokens every row shares and none is trained on (0 when under `minimum`).

    labels[:, t + 1] is the target of position t, so a prefix of P positions needs labels[:, 1 : P + 1]
    ignored in every row; at least one position is left to run per row.
    """
    rows, width = input_ids.shape
    if rows < 2 or width <= minimum:
        return 0
    same = (input_ids == input_ids[:1]).all(0).long().cumprod(0)  # 1 while every row agrees
    untrained = (labels[:, 1:] == IGNORE_INDEX).all(0).long().cumprod(0)  # 1 while no row has a target
    length = min(int(same.sum()), int(untrained.sum()), width - 1)
    return length if length >= minimum else 0


def common_prefix(rows: list[dict], minimum: int = MIN_SHARED) -> int:
    """`shared_prefix` over a whole data set's token rows (lists): what every micro-batch shares at least."""
    if len(rows) < 2:
        return 0
    first = rows[0]["input_ids"]
    length = min(len(r["input_ids"]) for r in rows) - 1
    for row in rows:
        ids, labels = row["input_ids"], row["labels"]
        trained = next((t - 1 for t in range(1, len(labels)) if labels[t] != IGNORE_INDEX), length)
        length = min(length, trained)
        length = next((t for t in range(length) if ids[t] != first[t]), length)
    return length if length >= minimum else 0


def decode_with_shared_prefix(decoder: nn.Module, input_ids: torch.Tensor, length: int) -> torch.Tensor:
    """Final hidden states [B, T - length, H] of positions length.. of every row, their first `length`
    tokens (the same in every row) run once. `decoder`: a transformers base model (lm.get_decoder())
    whose attention kernel is one of KERNELS' values."""
    rows, width = input_ids.shape
    rest = width - length
    ids = torch.cat([input_ids[0, :length], input_ids[:, length:].reshape(-1)])[None]
    positions = torch.cat([torch.arange(length), torch.arange(length, width).repeat(rows)])[None].to(ids.device)
    seen = torch.ones(rest, width, dtype=torch.bool, device=ids.device).tril(length)  # prefix, then causal
    mask = seen.expand(rows, 1, rest, width)  # its shape carries the layout to the attention function
    hidden = decoder(input_ids=ids, position_ids=positions, attention_mask=mask, use_cache=False).last_hidden_state
    return hidden[0, length:].view(rows, rest, -1)


def _shared_prefix_attention(inner, module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """query [1, H, P + B*R, D], key/value [1, KV, P + B*R, D], attention_mask [B, 1, R, P + R] (bool);
    returns [1, P + B*R, H, D] as transformers' attention functions do. `inner` attends one part."""
    rows, rest, width = attention_mask.shape[0], attention_mask.shape[2], attention_mask.shape[3]
    length = width - rest

    def split(x):  # [1, N, P + B*R, D] -> the prefix [1, N, P, D], the rows [B, N, R, D]
        heads, dim = x.shape[1], x.shape[3]
        return x[:, :, :length], x[0, :, length:].reshape(heads, rows, rest, dim).transpose(0, 1)

    (q_prefix, q_rows), (k_prefix, k_rows), (v_prefix, v_rows) = split(query), split(key), split(value)
    prefix_out = inner(module, q_prefix, k_prefix, v_prefix, None, dropout, scaling, **kwargs)[0]  # [1, P, H, D]
    keys = torch.cat([k_prefix.expand(rows, -1, -1, -1), k_rows], dim=2)  # [B, KV, P + R, D]
    values = torch.cat([v_prefix.expand(rows, -1, -1, -1), v_rows], dim=2)
    rows_out = inner(module, q_rows, keys, values, attention_mask[:1], dropout, scaling, **kwargs)[0]  # [B, R, H, D]
    return torch.cat([prefix_out, rows_out.reshape(1, rows * rest, *rows_out.shape[2:])], dim=1), None


def _sdpa(module, query, key, value, mask, dropout=0.0, scaling=None, **kwargs):
    causal = mask is None  # the prefix: plainly causal
    return sdpa_attention_forward(module, query, key, value, mask, dropout, scaling, is_causal=causal, **kwargs)


def short_rows_shared(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    return _shared_prefix_attention(short_row_attention, module, query, key, value, attention_mask, dropout, scaling,
                                    **kwargs)


def sdpa_shared(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    return _shared_prefix_attention(_sdpa, module, query, key, value, attention_mask, dropout, scaling, **kwargs)


for _name, _kernel in ((KERNELS[SHORT_ROW_KERNEL], short_rows_shared), (KERNELS["sdpa"], sdpa_shared)):
    AttentionInterface.register(_name, _kernel)
    AttentionMaskInterface.register(_name, sdpa_mask)  # only used if a call passes no 4D mask
