"""Preference losses on sequence log-probabilities: DPO (sigmoid), ORPO and SimPO.

Each takes per-pair tensors [B] and returns (loss per pair [B], chosen reward [B], rejected reward [B]).
The rewards are what training logs as accuracy (chosen reward > rejected reward) and margin
(chosen reward - rejected reward), with each paper's own definition of a reward:

- DPO (Rafailov et al. 2023): reward = beta * (log pi(y|x) - log pi_ref(y|x));
  loss = -log sigmoid(reward_chosen - reward_rejected).
- ORPO (Hong et al. 2024), no reference: with p = exp(mean token log-prob of y),
  odds(y) = p / (1 - p); loss = NLL(chosen, per token) - lambda * log sigmoid(log odds_c - log odds_r);
  reward = lambda * mean token log-prob (as TRL logs it).
- SimPO (Meng et al. 2024), no reference: reward = beta * mean token log-prob;
  loss = -log sigmoid(reward_chosen - reward_rejected - gamma).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Losses = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def dpo_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float
) -> Losses:
    """chosen/rejected: summed log-probs of each response under the policy; ref_*: under the reference."""
    reward_chosen = beta * (chosen - ref_chosen)
    reward_rejected = beta * (rejected - ref_rejected)
    return -F.logsigmoid(reward_chosen - reward_rejected), reward_chosen.detach(), reward_rejected.detach()


def orpo_loss(chosen_mean: torch.Tensor, rejected_mean: torch.Tensor, lam: float) -> Losses:
    """chosen_mean/rejected_mean: mean token log-prob of each response (< 0)."""
    log_odds = (chosen_mean - rejected_mean) - (_log1m_exp(chosen_mean) - _log1m_exp(rejected_mean))
    loss = -chosen_mean - lam * F.logsigmoid(log_odds)
    return loss, (lam * chosen_mean).detach(), (lam * rejected_mean).detach()


def simpo_loss(chosen_mean: torch.Tensor, rejected_mean: torch.Tensor, beta: float, gamma: float) -> Losses:
    reward_chosen, reward_rejected = beta * chosen_mean, beta * rejected_mean
    loss = -F.logsigmoid(reward_chosen - reward_rejected - gamma)
    return loss, reward_chosen.detach(), reward_rejected.detach()


def _log1m_exp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, clamped away from 0 where exp(x) rounds to 1."""
    return torch.log1p(-torch.exp(x.clamp(max=-1e-6)))
