"""Pick the next token from logits: greedy at temperature 0, else temperature + nucleus (top-p) sampling."""

from __future__ import annotations

import torch

GREEDY_BELOW = 1e-4  # temperatures this small are greedy (dividing by them would overflow)


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero the tail of `probs` [V] outside the smallest set whose mass reaches `top_p`, renormalised."""
    if top_p >= 1.0:
        return probs
    sorted_probs, order = torch.sort(probs, descending=True)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    keep = mass_before < top_p
    keep[0] = True  # the most likely token always survives, even at top_p = 0
    sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
    kept = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return kept / kept.sum()


def sample_one(logits: torch.Tensor, greedy: int, temperature: float, top_p: float,
               generator: torch.Generator | None) -> int:
    """One next token from one row's logits [V] (fp32); `greedy` is its argmax, used at temperature 0."""
    if temperature < GREEDY_BELOW:
        return greedy
    probs = top_p_filter(torch.softmax(logits / temperature, dim=-1), top_p)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator).item())


def sample_next(
    logits: torch.Tensor,
    temperatures: list[float],
    top_ps: list[float],
    generators: list[torch.Generator | None],
) -> list[int]:
    """One next token per row of `logits` [B, V], each row with its own settings and random stream."""
    logits = logits.float()
    greedy = logits.argmax(dim=-1).tolist()
    return [sample_one(logits[row], greedy[row], temperature, top_p, generator)
            for row, (temperature, top_p, generator) in enumerate(zip(temperatures, top_ps, generators, strict=True))]
