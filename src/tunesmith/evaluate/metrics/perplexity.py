"""Perplexity from summed negative log-likelihoods, and the per-sequence NLL itself."""

import math

import torch

from tunesmith.data.tokenize import IGNORE_INDEX  # the one label-ignore constant
from tunesmith.train.loss import summed_cross_entropy


def perplexity(total_nll: float, total_tokens: int) -> float:
    """exp(total_nll / total_tokens); NaN when there are no tokens, inf on overflow."""
    if total_tokens <= 0:
        return math.nan
    try:
        return math.exp(total_nll / total_tokens)
    except OverflowError:
        return math.inf


def sequence_nll(
    logits: torch.Tensor, labels: torch.Tensor, chunk_tokens: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy per sequence, ignoring labels equal to -100.

    Position t's logits predict label t+1 (the usual causal shift). The loss is computed
    in float32 one row, and at most `chunk_tokens` positions, at a time: a float32 copy
    of a whole [batch, seq, vocab] tensor can be many GiB for large vocabularies.

    Args:
        logits: [batch, seq, vocab] model outputs, any floating dtype.
        labels: [batch, seq] token ids, -100 where a position must not be scored.
        chunk_tokens: Most positions upcast to float32 at once.

    Returns:
        (sum_nll, n_tokens): float32 and int64 tensors of shape [batch] on the logits' device.
    """
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"sequence_nll needs logits [batch, seq, vocab] and labels [batch, seq]; "
            f"got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    batch = logits.shape[0]
    sums = torch.zeros(batch, dtype=torch.float32, device=logits.device)
    counts = torch.zeros(batch, dtype=torch.int64, device=logits.device)
    for row in range(batch):
        targets = labels[row, 1:].to(logits.device)
        # Gather only scored positions, chunk by chunk, so neither padding nor the
        # whole row is ever copied (in any dtype) before the float32 upcast.
        positions = (targets != IGNORE_INDEX).nonzero().squeeze(1)
        for start in range(0, positions.numel(), chunk_tokens):
            chunk = positions[start : start + chunk_tokens]
            sums[row] += summed_cross_entropy(logits[row, chunk], targets[chunk])
        counts[row] = positions.numel()
    return sums, counts
