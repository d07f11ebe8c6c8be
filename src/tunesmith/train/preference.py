"""The preference objective (DPO, ORPO, SimPO): sequence log-probs of chosen and rejected, one forward.

A preference batch holds 2B rows: the B chosen responses, then the B rejected ones (batching.collate).
The reference model DPO needs is, under LoRA, the same weights with the adapter switched off (peft's
`disable_adapter()`: no second copy in memory, one extra forward without gradients). Under full
fine-tuning the reference log-probs are computed once, before the first step, with the initial
weights (`reference_logps`) and travel with each row: two floats per pair, where a frozen fp32 copy
of SmolLM2-135M took 1,058 MB more RSS (measured) and would cost a forward pass every step.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from tunesmith.errors import TunesmithError
from tunesmith.runs import atomic_write_text
from tunesmith.train.attention import SHORT_MAX_WIDTH, use_attention
from tunesmith.train.loss import IGNORE_INDEX
from tunesmith.train.methods import causal_lm
from tunesmith.train.objective import Objective, fused_head_supported
from tunesmith.train.preference_loss import dpo_loss, orpo_loss, simpo_loss

STATS = ("pairs", "reward_accuracy", "reward_margin", "logps_chosen", "logps_rejected")  # summed, in this order


def sequence_logps(model, input_ids, labels, position_ids=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-prob of the trained tokens of each row [R], how many there were [R]), in fp32.

    Logits are computed only at trained positions ([N, V], N = trained tokens), as in train/loss.py."""
    lm = causal_lm(model)
    targets = labels[:, 1:]  # [R, T-1]: labels[:, t + 1] is predicted at position t
    keep = targets != IGNORE_INDEX
    if fused_head_supported(lm):
        hidden = lm.get_decoder()(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state
        logits = lm.get_output_embeddings()(hidden[:, :-1][keep])  # [N, V]
    else:
        logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits[:, :-1][keep]
    token_logps = F.log_softmax(logits.float(), dim=-1).gather(1, targets[keep][:, None]).squeeze(1)  # [N]
    rows = keep.nonzero()[:, 0]  # [N]: the row of each trained token
    sums = torch.zeros(labels.shape[0], dtype=torch.float32, device=labels.device).index_add(0, rows, token_logps)
    return sums, keep.sum(dim=1)


class PreferenceObjective(Objective):
    """forward(input_ids, labels, position_ids, reference) -> (summed loss over pairs, number of pairs).

    `reference`: [2B] reference log-probs of the rows (full fine-tuning), or None to compute them with
    the adapter disabled (LoRA). ORPO and SimPO need none. Accuracy, margin and log-probs of the
    batches seen are summed in `stats` until `take_stats()`."""

    def __init__(self, model, kind: str, settings, device: str | None = None, compiled_loss: bool = False,
                 short_max: int = SHORT_MAX_WIDTH):
        super().__init__(model, device, compiled_loss, short_max)
        self.kind, self.settings = kind, settings  # settings: config.PreferenceConfig
        self.stats = torch.zeros(len(STATS), dtype=torch.float64)  # not a buffer: DDP would broadcast it

    @property
    def needs_reference(self) -> bool:
        return self.kind == "dpo"

    @property
    def reference_from_adapter(self) -> bool:
        return hasattr(self.model, "disable_adapter")

    def forward(self, input_ids, labels, position_ids=None, reference=None):
        if self.device is not None:
            use_attention(causal_lm(self.model), self.kernel_for(input_ids.shape[1]))
        logps, counts = sequence_logps(self.model, input_ids, labels, position_ids)
        pairs = labels.shape[0] // 2
        chosen, rejected = logps[:pairs], logps[pairs:]
        valid = (counts[:pairs] > 0) & (counts[pairs:] > 0)  # a fully masked pair counts for nothing
        if self.kind == "dpo":
            if reference is None:
                reference = self.reference_logps(input_ids, labels, position_ids)
            losses, good, bad = dpo_loss(chosen, rejected, reference[:pairs], reference[pairs:], self.settings.beta)
        else:
            chosen_mean = chosen / counts[:pairs].clamp(min=1)
            rejected_mean = rejected / counts[pairs:].clamp(min=1)
            if self.kind == "orpo":
                losses, good, bad = orpo_loss(chosen_mean, rejected_mean, self.settings.orpo_lambda)
            else:
                losses, good, bad = simpo_loss(
                    chosen_mean, rejected_mean, self.settings.simpo_beta, self.settings.simpo_gamma
                )
        weight = valid.to(losses.dtype)
        with torch.no_grad():
            self.stats += torch.stack([
                weight.sum(), ((good > bad) * weight).sum(), ((good - bad) * weight).sum(),
                (chosen * weight).sum(), (rejected * weight).sum(),
            ]).to(self.stats)
        return (losses * weight).sum(), valid.sum()

    def reference_logps(self, input_ids, labels, position_ids=None) -> torch.Tensor:
        """Log-probs [R] under the reference: the base model, adapter switched off."""
        if not self.reference_from_adapter:
            raise ValueError("full fine-tuning with DPO needs reference log-probs in the batch (reference_logps)")
        with torch.no_grad(), self.model.disable_adapter():
            return sequence_logps(self.model, input_ids, labels, position_ids)[0]

    def take_stats(self) -> torch.Tensor:
        taken = self.stats.clone()
        self.stats.zero_()
        return taken


def stats_record(sums: list[float]) -> dict[str, float]:
    """Summed stats (STATS order) -> the means a log record shows."""
    pairs = max(1.0, sums[0])
    return {name: value / pairs for name, value in zip(STATS[1:], sums[1:], strict=True)}


def reference_logps(model, rows: list[dict], batch_size: int, pad_id: int, device, autocast) -> list[list[float]]:
    """[reference log-prob of chosen, of rejected] for each preference row, with the weights as they are now."""
    from tunesmith.train.batching import collate

    was_training = model.training
    model.eval()
    out: list[list[float]] = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            part = rows[start : start + batch_size]
            batch = collate(part, pad_id).to(device)
            with autocast:
                logps = sequence_logps(model, batch.input_ids, batch.labels, batch.position_ids)[0].cpu()
            n = len(part)
            out += [[float(logps[i]), float(logps[n + i])] for i in range(n)]
    model.train(was_training)
    return out


def objective_needs_reference(objective) -> bool:
    """True when reference log-probs must be precomputed (DPO without an adapter to switch off)."""
    return objective.needs_reference and not objective.reference_from_adapter


def attach_reference(cluster, objective, data, eval_data, run_dir: Path, resuming: bool, settings, pad_id: int,
                     autocast) -> None:
    """Give every train and eval pair its reference log-probs (`ref_chosen`, `ref_rejected`).

    Computed with the weights as loaded, before the first step, and saved in run_dir; a resumed run
    reads them back instead of recomputing them with trained weights."""
    if cluster.fsdp:
        raise TunesmithError(
            "train.objective: dpo with train.method full cannot precompute reference log-probs under FSDP; "
            "use train.method lora (the reference is then the base with the adapter off), or DDP"
        )
    path = run_dir / "reference_logps.json"
    eval_rows = eval_data.rows if eval_data is not None else []
    if resuming and path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
    else:
        model = cluster.unwrap(objective).model
        size = settings.batch_size * 2
        saved = {"train": reference_logps(model, data.rows, size, pad_id, cluster.device, autocast),
                 "eval": reference_logps(model, eval_rows, size, pad_id, cluster.device, autocast)}
        if cluster.is_main:
            atomic_write_text(path, json.dumps(saved))
    for rows, values in ((data.rows, saved["train"]), (eval_rows, saved["eval"])):
        if len(rows) != len(values):
            raise TunesmithError(f"{path}: reference log-probs of {len(values)} pairs, the data has {len(rows)}; "
                                 "start the run again with --no-resume")
        for row, (chosen, rejected) in zip(rows, values, strict=True):
            row["ref_chosen"], row["ref_rejected"] = chosen, rejected
