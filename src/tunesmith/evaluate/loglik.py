"""Log-likelihood of a continuation given its context, batched, without keeping logits around.

Rows are left-padded so every continuation ends at the last position; the model is asked for
the logits of the last `longest continuation + 1` positions only (`logits_to_keep`), so a
batch never materialises [batch, seq, vocab] logits for the context. Nothing outlives a batch:
memory is flat in the number of rows. Perplexity of reference answers is built on this.

`shared_context_logprobs` gives the same numbers for pairs that share contexts, as the choices of a
multiple-choice question share its prompt: each batch runs its distinct contexts once, keeping their
KV cache, then every continuation on top of its context's cache rows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from tunesmith.engine.batch import cache_argument, left_pad, new_cache
from tunesmith.evaluate.metrics.perplexity import IGNORE_INDEX, sequence_nll
from tunesmith.models import unwrap_peft
from tunesmith.train.loss import summed_cross_entropy

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
    _check_contexts(pairs)
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


def shared_context_logprobs(model, pairs: list[Pair], *, pad_id: int, batch_size: int = 16) -> list[tuple[float, int]]:
    """`continuation_logprobs` for pairs that share contexts, running each context once per batch.

    A batch holds up to `batch_size` non-empty continuations; pairs are sorted so that those of one
    context sit together, and a context whose continuations straddle two batches runs in both.

    Raises:
        ValueError: If a pair has an empty context.
    """
    _check_contexts(pairs)
    scored = [i for i, (_, answer) in enumerate(pairs) if answer]
    order = sorted(scored, key=lambda i: (-len(pairs[i][0]), pairs[i][0]))
    results: list[tuple[float, int]] = [(0.0, 0)] * len(pairs)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            nll = _score_on_shared_contexts(model, [pairs[i] for i in rows], pad_id)
            for i, total in zip(rows, nll, strict=True):
                results[i] = (-total, len(pairs[i][1]))
    return results


def _score_on_shared_contexts(model, pairs: list[Pair], pad_id: int) -> list[float]:
    """Summed NLL of each (non-empty) continuation: distinct contexts once, then the continuations on their cache."""
    device = next(model.parameters()).device
    slots: dict[tuple[int, ...], int] = {}
    owner = torch.tensor([slots.setdefault(tuple(context), len(slots)) for context, _ in pairs], device=device)
    context_ids, context_mask = left_pad([list(context) for context in slots], pad_id, device)
    cache = new_cache(model)
    out = _forward(model, context_ids, context_mask, (context_mask.cumsum(-1) - 1).clamp(min=0), cache, keep=1)
    logits = out.logits[:, -1:][owner]  # [rows, 1, vocab]: the last context position predicts answer[0]
    tails = [answer[:-1] for _, answer in pairs]  # the inputs that predict answer[1:]
    width = max(len(tail) for tail in tails)
    if width:
        cache.batch_select_indices(owner)  # [contexts, ...] -> [rows, ...]
        tail_ids, tail_mask = left_pad(tails, pad_id, device)
        mask = torch.cat([context_mask[owner], tail_mask], dim=1)  # padding between context and tail is masked
        positions = (mask.cumsum(-1) - 1)[:, -width:]  # each tail continues from its context's length
        logits = torch.cat([logits, _forward(model, tail_ids, mask, positions, cache).logits], dim=1)
    nll = []
    for row, (_, answer) in enumerate(pairs):
        # answer[0] from the context's last position, answer[1:] from the tail's (right-aligned) positions
        predictions = torch.cat([logits[row, :1], logits[row, logits.shape[1] - len(answer) + 1 :]])
        nll.append(summed_cross_entropy(predictions, torch.tensor(answer, device=device)).item())
    return nll


def _forward(model, input_ids, attention_mask, position_ids, cache, keep: int = 0):
    kwargs = {"logits_to_keep": keep} if keep and accepts_logits_to_keep(model) else {}
    return model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True,
                 **{cache_argument(model): cache}, **kwargs)


def _check_contexts(pairs: list[Pair]) -> None:
    if any(not context for context, _ in pairs):
        raise ValueError("continuation_logprobs needs a non-empty context for every pair")


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
