"""Batches for training: pad at collate time, masked by length, never by pad-token id.

SmolLM2's pad token IS its EOS token: masking labels where `input_ids == pad_id` would erase
every EOS and the model would never learn to stop. Here padding is whatever lies past a row's
length, so EOS inside a row always keeps its label.
"""

from __future__ import annotations

from tunesmith.data.tokenize import IGNORE_INDEX


def pad_batch(rows: list[dict], pad_id: int, pad_to_multiple_of: int = 1) -> dict[str, list[list[int]]]:
    """Right-pad `input_ids` and `labels` (and `position_ids` of packed rows) to the longest row.

    Unpacked rows get an `attention_mask` (1 = real token). Packed rows get none: their
    `position_ids` restart at 0 for every example, and the padded tail is numbered from 0 too,
    so it forms a separate sequence; the model derives the block-diagonal mask from them (call
    it with `use_cache=False` in training, as transformers only does this without a cache).
    """
    longest = max(len(row["input_ids"]) for row in rows)
    width = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    packed = "position_ids" in rows[0]
    batch: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    batch["position_ids" if packed else "attention_mask"] = []
    for row in rows:
        n = len(row["input_ids"])
        tail = width - n
        batch["input_ids"].append([*row["input_ids"], *[pad_id] * tail])
        batch["labels"].append([*row["labels"], *[IGNORE_INDEX] * tail])
        if packed:
            batch["position_ids"].append([*row["position_ids"], *range(tail)])
        else:
            batch["attention_mask"].append([1] * n + [0] * tail)
    return batch


def collate(rows: list[dict], pad_id: int, pad_to_multiple_of: int = 1) -> dict:
    """`pad_batch` as torch.long tensors [batch, longest]."""
    import torch

    return {k: torch.tensor(v, dtype=torch.long) for k, v in pad_batch(rows, pad_id, pad_to_multiple_of).items()}
