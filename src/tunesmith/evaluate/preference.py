"""Preference accuracy on held-out pairs: does the model give the chosen answer more log-likelihood?

For each test pair, margin = log p(chosen | prompt) - log p(rejected | prompt) (summed over the answer's
tokens, as DPO scores a sequence). Per model, eval/metrics.json gets:

- `preference_accuracy`: share of pairs with margin > 0;
- `preference_margin`: the mean margin (nats);
- `preference_reward_accuracy` (tuned only): share of pairs whose margin grew from the base model's, i.e.
  whose DPO implicit reward log(pi/pi_ref)(chosen) - log(pi/pi_ref)(rejected) is positive, with the base
  as the reference; and `preference_reward_margin`, its mean.
"""

from __future__ import annotations

import torch

from tunesmith.train.batching import PREFERENCE_COLUMNS, TrainData, collate
from tunesmith.train.preference import sequence_logps


def pair_rows(test_rows, max_examples: int | None = None) -> list[dict] | None:
    """The test split's pairs (token rows), or None when the data has no rejected answers."""
    names = getattr(test_rows, "column_names", None) or []
    if PREFERENCE_COLUMNS[0] not in names or len(test_rows) == 0:
        return None
    rows = TrainData.from_rows(test_rows, pairs=True).rows
    return rows[:max_examples] if max_examples else rows


def pair_margins(model, rows: list[dict], pad_id: int, batch_size: int) -> torch.Tensor:
    """[n] log p(chosen) - log p(rejected) under `model`, in fp32."""
    device = next(model.parameters()).device
    margins = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            part = rows[start : start + batch_size]
            batch = collate(part, pad_id).to(device)
            logps, _ = sequence_logps(model, batch.input_ids, batch.labels)
            margins.append((logps[: len(part)] - logps[len(part) :]).cpu())
    model.train(was_training)
    return torch.cat(margins)


def preference_metrics(margins: torch.Tensor, base_margins: torch.Tensor | None = None) -> dict:
    out = {
        "preference_accuracy": float((margins > 0).double().mean()),
        "preference_margin": float(margins.double().mean()),
        "preference_n": len(margins),
    }
    if base_margins is not None:
        reward = margins - base_margins
        out["preference_reward_accuracy"] = float((reward > 0).double().mean())
        out["preference_reward_margin"] = float(reward.double().mean())
    return out
