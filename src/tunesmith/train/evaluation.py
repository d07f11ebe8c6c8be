"""Eval loss on the held-out split: the same objective as training, no gradients, no dropout."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn

from tunesmith.train.batching import collate
from tunesmith.train.loss import IGNORE_INDEX


def eval_loss(
    objective: nn.Module, rows: list[dict], batch_size: int, pad_id: int, cluster, autocast: AbstractContextManager
) -> float:
    """Mean token loss over every trained target in `rows`, shared out across processes.

    Every process runs the same number of forward passes (FSDP and DDP need that); a process
    whose share of a batch is empty runs a fully masked copy of one row and counts nothing.
    """
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
    loss_sum = torch.zeros((), dtype=torch.float64)
    count = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            share = order[start : start + batch_size][cluster.rank :: cluster.world]
            chosen = [rows[i] for i in share] or [_masked(rows[order[start]])]
            batch = collate(chosen, pad_id).to(cluster.device)
            with autocast:
                loss, targets = objective(*batch.inputs())
            loss_sum += loss.double().cpu()
            count += targets.double().cpu()
    total, n = cluster.sum(loss_sum), cluster.sum(count)
    return total / max(1.0, n)


def _masked(row: dict) -> dict:
    return {**row, "labels": [IGNORE_INDEX] * len(row["labels"])}
