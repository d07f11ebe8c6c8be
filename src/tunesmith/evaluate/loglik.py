"""Log-likelihood of a continuation given its context, batched, without keeping logits around.

Rows are left-padded so every continuation ends at the last position; the model is asked for
the logits of the last `longest continuation + 1` positions only (`logits_to_keep`), so a
batch never materialises [batch, seq, vocab] logits for the context. Nothing outlives a batch:
memory is flat in the number of rows. Perplexity of reference answers and multiple-choice
scoring are both built on this.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from tunesmith.engine.batch import left_pad
from tunesmith.evaluate.metrics.perplexity import IGNORE_INDEX, sequence_nll
from tunesmith.models import unwrap_peft

Pair = tuple[list[int], list[int]]  # (context ids, continuation ids)


def continuation_logprobs(
    model,
    pairs: list[Pair],
    *,
    pad_id: int,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[float, int]]:
    """(sum of log p(continuation token | everything before it), continuation length) per pair.

    Results are in input order. An empty continuation scores (0.0, 0).

    Raises:
        ValueError: If a pair has an empty context (the first token would have no prediction).
    """
    if any(not context for context, _ in pairs):
        raise ValueError("continuation_logprobs needs a non-empty context for every pair")
    order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    results: list[tuple[float, int]] = [(0.0, 0)] * len(pairs)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            sums, counts = _score_batch(model, [pairs[i] for i in rows], pad_id)
            for i, total, count in zip(rows, sums, counts, strict=True):
                results[i] = (-total, count)
            if progress:
                progress(len(rows))
    return results


def _score_batch(model, pairs: list[Pair], pad_id: int) -> tuple[list[float], list[int]]:
    device = next(model.parameters()).device
    input_ids, attention_mask = left_pad([context + answer for context, answer in pairs], pad_id, device)
    keep = max(len(answer) for _, answer in pairs) + 1  # the last context position predicts answer[0]
    logits = _tail_logits(model, input_ids, attention_mask, keep)  # [batch, keep, vocab]
    labels = torch.full((len(pairs), keep), IGNORE_INDEX, dtype=torch.long, device=device)
    for row, (_, answer) in enumerate(pairs):
        if answer:
            labels[row, keep - len(answer) :] = torch.tensor(answer, device=device)
    nll, counts = sequence_nll(logits, labels)
    return nll.tolist(), counts.tolist()


def _tail_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, keep: int) -> torch.Tensor:
    # Explicit positions: with left padding each row's first real token must sit at position 0.
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    kwargs = {"logits_to_keep": keep} if accepts_logits_to_keep(model) else {}
    out = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False, **kwargs
    )
    return out.logits[:, -keep:]


def accepts_logits_to_keep(model) -> bool:
    """Whether the (possibly peft-wrapped) model can skip the LM head for early positions."""
    inner = unwrap_peft(model)
    return "logits_to_keep" in inspect.signature(inner.forward).parameters
