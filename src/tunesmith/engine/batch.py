"""A batch of sequences decoded together over one KV cache, which new sequences can join between steps.

Rows are left-padded: every row's cache and attention mask are right-aligned, so one step feeds
one token per row. A joining group is prefilled on its own, then its cache is left-padded to
the batch's width (or the batch's to its width) and stacked under it. Finished rows leave the
cache; columns that became padding in every row are cut, so the cache does not grow forever.
Joining needs plain `DynamicLayer` caches; for other cache kinds (sliding windows, ...) `can_join`
is False and a batch runs with the rows it started with.

A failure while sampling or detokenising one row (a bad seed, a tokenizer error) finishes only
that row, with finish reason "error" and the message in its sequence's `error`; its batch-mates
go on. A failure of the forward pass itself is the whole batch's and is raised.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tunesmith.engine.detokenize import TextStream
from tunesmith.engine.sampling import sample_one
from tunesmith.models import unwrap_peft

log = logging.getLogger("tunesmith.engine")
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
        self.cache_arg = cache_argument(model)
        self.prefill_args = {"logits_to_keep": 1} if _takes(model, "logits_to_keep") else {}

    def add(self, rows: list[Row]) -> list[Update]:
        """Prefill `rows` and sample their first token; they join the batch unless already finished."""
        if self.rows and not self.can_join:
            raise RuntimeError("this model's cache cannot take rows into a running batch")
        ids, mask = left_pad([row.sequence.prompt_ids for row in rows], 0, self.model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = new_cache(self.model)
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                             **{self.cache_arg: cache}, **self.prefill_args)
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
        logits = logits.float()
        greedy = logits.argmax(dim=-1).tolist()
        updates, tokens, keep = [], [], []
        for i, row in enumerate(rows):
            seq = row.sequence
            try:
                token = sample_one(logits[i], greedy[i], seq.temperature, seq.top_p, row.generator)
                delta, finish = self.advance(seq, row.stream, token, row.room, self.is_cancelled(row.key))
            except Exception as err:  # noqa: BLE001 - one row's failure must not fail its batch-mates
                log.exception("generation failed for one sequence")
                token, delta, finish = 0, "", fail(seq, err)
            tokens.append(token)
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


def left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """[batch, width] ids and attention mask, padded on the left (so every row ends together)."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, row in enumerate(rows):
        if row:
            ids[k, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[k, width - len(row):] = 1
    return ids.to(device), mask.to(device)


def fail(sequence, err: Exception) -> str:
    """Mark one sequence as failed; returns the finish reason "error"."""
    sequence.error = f"{type(err).__name__}: {err}"
    sequence.finish_reason = sequence.stopped = "error"
    return "error"


def _takes(model, argument: str) -> bool:
    return argument in inspect.signature(unwrap_peft(model).forward).parameters


def cache_argument(model) -> str:
    """The forward() argument that takes the cache: `cache` (recent transformers) or `past_key_values`."""
    return "cache" if _takes(model, "cache") else "past_key_values"


def new_cache(model):
    from transformers import DynamicCache

    return DynamicCache(config=unwrap_peft(model).config)
