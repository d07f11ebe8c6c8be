"""The one collator: batches for training, and for the data check of EOS labels (data/checks.py).

Pad at collate time, masked by length, never by pad-token id: SmolLM2's pad token IS its EOS
token, so masking labels where `input_ids == pad_id` would erase every EOS and the model would
never learn to stop. Here padding is whatever lies past a row's length, so EOS inside a row
always keeps its label.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tunesmith.data.tokenize import IGNORE_INDEX

PREFERENCE_COLUMNS = ("rejected_input_ids", "rejected_labels")  # beside input_ids/labels (the chosen side)


@dataclass
class Batch:
    """Right-padded tensors for one forward pass."""

    input_ids: torch.Tensor  # [B, T]
    labels: torch.Tensor  # [B, T], IGNORE_INDEX on padding and untrained tokens
    position_ids: torch.Tensor | None  # [B, T] for packed rows (restart at 0 per example), else None
    tokens: int  # tokens that are not padding
    targets: int  # positions whose next token is trained (the loss's denominator); pairs for preference rows
    reference: torch.Tensor | None = None  # [B] reference log-probs of preference rows (full fine-tuning DPO)

    def to(self, device: torch.device) -> Batch:
        pos = self.position_ids.to(device) if self.position_ids is not None else None
        ref = self.reference.to(device) if self.reference is not None else None
        return Batch(self.input_ids.to(device), self.labels.to(device), pos, self.tokens, self.targets, ref)

    def inputs(self) -> tuple:
        """The objective's arguments."""
        extra = (self.reference,) if self.reference is not None else ()
        return (self.input_ids, self.labels, self.position_ids, *extra)


def collate(rows: list[dict], pad_id: int) -> Batch:
    """Pad to the longest row, masking by length (never by token id: pad may equal EOS).

    No attention mask is built: with right padding and causal attention no real token can see a
    pad, and pads' outputs carry no loss. Packed rows get position_ids, from which the model builds
    a block-diagonal mask; the first token of each packed example is never a target (it would be
    predicted from the previous example).
    Preference rows (with rejected_input_ids) become 2B rows: the B chosen sides, then the B rejected.
    """
    if PREFERENCE_COLUMNS[0] in rows[0]:
        return _collate_pairs(rows, pad_id)
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    packed = "position_ids" in rows[0]
    positions = torch.zeros((len(rows), width), dtype=torch.long) if packed else None
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        ids[i, :n] = torch.tensor(row["input_ids"], dtype=torch.long)
        labels[i, :n] = torch.tensor(row["labels"], dtype=torch.long)
        if positions is not None:
            positions[i, :n] = torch.tensor(row["position_ids"], dtype=torch.long)
            positions[i, n:] = torch.arange(width - n)  # padding forms its own segment
    if positions is not None:
        labels[positions == 0] = IGNORE_INDEX
    tokens = sum(len(r["input_ids"]) for r in rows)
    targets = int((labels[:, 1:] != IGNORE_INDEX).sum())
    return Batch(ids, labels, positions, tokens, targets)


def _collate_pairs(rows: list[dict], pad_id: int) -> Batch:
    sides = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows]
    sides += [{"input_ids": r["rejected_input_ids"], "labels": r["rejected_labels"]} for r in rows]
    batch = collate(sides, pad_id)
    batch.targets = len(rows)
    if "ref_chosen" in rows[0]:
        batch.reference = torch.tensor([r["ref_chosen"] for r in rows] + [r["ref_rejected"] for r in rows])
    return batch
