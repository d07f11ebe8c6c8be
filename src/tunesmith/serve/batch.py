"""A batch of sequences decoded together over one KV cache, which new sequences can join between steps.

Rows are left-padded: every row's cache and attention mask are right-aligned, so one step feeds
one token per row. A joining group is prefilled on its own, then its cache is left-padded to
the batch's width (or the batch's to its width) and stacked under it. Finished rows leave the
cache; columns that became padding in every row are cut, so the cache does not grow forever.
Joining needs plain `DynamicLayer` caches; for other cache kinds (sliding windows, ...) `can_join`
is False and a batch runs with the rows it started with.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tunesmith.serve.detokenize import TextStream
from tunesmith.serve.sampling import sample_next

Update = tuple[Hashable, str, str | None]  # (row key, new text, finish reason once finished)


@dataclass
class Row:
    key: Hashable  # the caller's name for this sequence
    sequence: object  # decoding.Sequence (output fields filled in as it runs)
    stream: TextStream
    generator: torch.Generator
    room: int  # tokens it may still generate in total (max_new_tokens within the context)


class Batch:
    def __init__(self, model, advance: Callable, is_cancelled: Callable[[Hashable], bool] = lambda key: False):
        self.model, self.advance, self.is_cancelled = model, advance, is_cancelled
        self.rows: list[Row] = []
        self.cache = None
        self.mask: torch.Tensor | None = None  # [B, T] 1 where the cache holds a real token
        self.last_position: torch.Tensor | None = None  # [B, 1] position of each row's last token
        self.next_tokens: list[int] = []  # sampled, not yet fed
        self.can_join = True
        self.cache_arg = _cache_arg(model)

    def add(self, rows: list[Row]) -> list[Update]:
        """Prefill `rows` and sample their first token; they join the batch unless already finished."""
        if self.rows and not self.can_join:
            raise RuntimeError("this model's cache cannot take rows into a running batch")
        ids, mask = _left_pad([row.sequence.prompt_ids for row in rows], self.model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = _new_cache(self.model)
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                             **{self.cache_arg: cache})
        updates, tokens, keep = self._sample(rows, out.logits[:, -1, :])
        if keep:
            self._join([rows[i] for i in keep], cache, mask[keep], positions[keep, -1:], [tokens[i] for i in keep],
                       keep if len(keep) < len(rows) else None)
        return updates

    def step(self) -> list[Update]:
        """Feed each row its last sampled token; sample the next."""
        ids = torch.tensor([[token] for token in self.next_tokens], device=self.model.device)
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=-1)
        self.last_position = self.last_position + 1
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=self.last_position,
                             use_cache=True, **{self.cache_arg: self.cache})
        updates, tokens, keep = self._sample(self.rows, out.logits[:, -1, :])
        self.next_tokens = tokens
        if len(keep) < len(self.rows):
            self._keep(keep)
        return updates

    # ------------------------------------------------------------------ internals

    def _sample(self, rows: list[Row], logits: torch.Tensor) -> tuple[list[Update], list[int], list[int]]:
        sequences = [row.sequence for row in rows]
        tokens = sample_next(logits, [s.temperature for s in sequences], [s.top_p for s in sequences],
                             [row.generator for row in rows])
        updates, keep = [], []
        for i, (row, token) in enumerate(zip(rows, tokens, strict=True)):
            delta, finish = self.advance(row.sequence, row.stream, token, row.room, self.is_cancelled(row.key))
            if delta or finish:
                updates.append((row.key, delta, finish))
            if finish is None:
                keep.append(i)
        return updates, tokens, keep

    def _join(self, rows: list[Row], cache, mask, last_position, tokens: list[int], keep: list[int] | None) -> None:
        if keep is not None:
            cache.batch_select_indices(torch.tensor(keep, device=mask.device))
        if not self.rows:
            self.rows, self.cache, self.mask, self.last_position, self.next_tokens = (
                rows, cache, mask, last_position, tokens)
            self.can_join = _joinable(cache)
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, width, -2), _pad_left(theirs.keys, width, -2)])
            mine.values = torch.cat([_pad_left(mine.values, width, -2), _pad_left(theirs.values, width, -2)])
        self.mask = torch.cat([_pad_left(self.mask, width, -1), _pad_left(mask, width, -1)])
        self.last_position = torch.cat([self.last_position, last_position])
        self.rows, self.next_tokens = self.rows + rows, self.next_tokens + tokens

    def _keep(self, keep: list[int]) -> None:
        """Drop finished rows, then the leading columns that are padding in every remaining row."""
        self.rows = [self.rows[i] for i in keep]
        self.next_tokens = [self.next_tokens[i] for i in keep]
        if not keep:
            self.cache = self.mask = self.last_position = None
            return
        self.cache.batch_select_indices(torch.tensor(keep, device=self.mask.device))
        self.mask, self.last_position = self.mask[keep], self.last_position[keep]
        lead = int((self.mask.cumsum(-1) == 0).sum(-1).min())
        if lead and self.can_join:
            self.mask = self.mask[:, lead:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., lead:, :], layer.values[..., lead:, :]


def _joinable(cache) -> bool:
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return False
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    pad = [0, 0] * (-dim - 1) + [missing, 0]  # F.pad lists dims from the last one backwards
    return F.pad(tensor, pad)


def _left_pad(prompts: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _cache_arg(model) -> str:
    """The forward() argument that takes the cache: `cache` (recent transformers) or `past_key_values`."""
    return "cache" if "cache" in inspect.signature(_base(model).forward).parameters else "past_key_values"


def _new_cache(model):
    from transformers import DynamicCache

    return DynamicCache(config=_base(model).config)
