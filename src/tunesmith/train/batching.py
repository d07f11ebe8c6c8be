"""Batches that waste little compute on padding, in an order that a resumed run can replay.

An epoch's order is a pure function of (seed, epoch): rows are shuffled, cut into groups of
`GROUP_BATCHES` batches, sorted by length inside each group, split into batches, and the
batches shuffled again. Similar lengths share a batch (little padding) while the data order
stays random. Resuming at step k of an epoch replays the same plan and skips k batches.

A *step batch* holds every row of one optimizer step on all processes. It is split into
micro-batches (gradient accumulation) and then across processes, so N processes with batch b
see exactly the rows one process with batch N*b sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tunesmith.errors import TunesmithError
from tunesmith.train.loss import IGNORE_INDEX

GROUP_BATCHES = 64  # batches sorted together: large enough to cut padding, small enough to stay random
PREFERENCE_COLUMNS = ("rejected_input_ids", "rejected_labels")  # beside input_ids/labels (the chosen side)
MICRO_TOKENS = 2048  # padded tokens per forward pass at most: bounds activation memory, keeps matmuls large


def plan_epoch(lengths: list[int], step_batch: int, seed: int, epoch: int, min_rows: int = 1) -> list[list[int]]:
    """Row indices of each optimizer step in this epoch, length-grouped and shuffled.

    The batch holding the longest row comes first, so a run that runs out of memory does so at once.
    A last batch smaller than `min_rows` (the number of processes) is dropped.
    """
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(lengths), generator=gen).tolist()
    group = step_batch * GROUP_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), group):
        rows = sorted(order[start : start + group], key=lambda i: -lengths[i])
        batches += [rows[i : i + step_batch] for i in range(0, len(rows), step_batch)]
    batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
    batches = [b for b in batches if len(b) >= min_rows]
    if batches:
        longest = max(range(len(batches)), key=lambda i: max(lengths[r] for r in batches[i]))
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


def split_step(
    rows: list[int], lengths: list[int], micro_batches: int, rank: int, world: int, max_tokens: int = MICRO_TOKENS
) -> list[list[int]]:
    """This process's micro-batches of one step batch.

    Rows are sorted by length and cut into at least `micro_batches` runs (gradient accumulation),
    more where a run would exceed `max_tokens` padded tokens per process, so the activations of a
    step stay bounded whatever its longest row. Each run is dealt out across processes. Every
    process gets the same number of micro-batches. The gradient is the same however a step is cut:
    the loss is normalised by the step's trained-token count, not per micro-batch.
    """
    rows = sorted(rows, key=lambda i: -lengths[i])
    per_micro = -(-len(rows) // micro_batches)
    micros: list[list[int]] = []
    start = 0
    while start < len(rows):
        fits = max(1, max_tokens // lengths[rows[start]]) * world  # the run's first row is its longest
        left = len(rows) - start
        size = max(world, min(per_micro, fits))
        size = -(-left // -(-left // size))  # as many runs as needed, of even size (no runt of one row)
        micros.append(rows[start : start + size])
        start += size
    if len(micros) > 1 and len(micros[-1]) < world:  # too few rows left to give every process one
        micros[-2] += micros.pop()
    return [m[rank::world] for m in micros]


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


def step_counts(rows: list[int], dataset_lengths: list[int], label_counts: list[int]) -> tuple[int, int]:
    """(tokens, trained targets) of a whole step batch, known to every process without communication."""
    return sum(dataset_lengths[i] for i in rows), sum(label_counts[i] for i in rows)


def target_count(row: dict) -> int:
    """How many positions of a row have a trained next token (what collate will count); 1 for a pair."""
    if PREFERENCE_COLUMNS[0] in row:
        return 1
    labels = row["labels"]
    positions = row.get("position_ids")
    return sum(
        1 for t in range(1, len(labels)) if labels[t] != IGNORE_INDEX and (positions is None or positions[t] != 0)
    )


@dataclass
class TrainData:
    """Token rows with what batching needs to know about them, computed once."""

    rows: list[dict]
    lengths: list[int]
    targets: list[int]

    @classmethod
    def from_rows(cls, rows, pairs: bool | None = None) -> TrainData:
        """pairs: True needs preference rows, False keeps only their chosen side (SFT on chosen), None takes
        what is there."""
        present = _columns(rows)
        if pairs and PREFERENCE_COLUMNS[0] not in present:
            raise TunesmithError(
                "train.objective: a preference objective needs {prompt, chosen, rejected} rows, and this data has "
                "none; set data.path to preference data (`tunesmith pairs RUN_DIR` makes some from an evaluated "
                "run) or train.objective: sft"
            )
        wanted = ("input_ids", "labels", "position_ids", *(PREFERENCE_COLUMNS if pairs is not False else ()))
        columns = [c for c in wanted if c in present]
        plain = rows.select_columns(columns).to_list() if hasattr(rows, "select_columns") else list(rows)
        return cls(plain, [row_length(r) for r in plain], [target_count(r) for r in plain])

    @property
    def preference(self) -> bool:
        return bool(self.rows) and PREFERENCE_COLUMNS[0] in self.rows[0]


def row_length(row: dict) -> int:
    """Tokens of a row; of both sides for a preference pair."""
    return len(row["input_ids"]) + len(row.get(PREFERENCE_COLUMNS[0], ()))


class StepPlan:
    """Which rows each optimizer step trains on, for any step, replayable after a resume."""

    def __init__(self, data: TrainData, step_batch: int, seed: int, world: int):
        self.data, self.step_batch, self.seed, self.world = data, step_batch, seed, world
        self._epoch, self._batches = -1, []
        self.steps_per_epoch = len(plan_epoch(data.lengths, step_batch, seed, 0, min_rows=world))
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(data.lengths)} training rows cannot fill a batch on {world} processes")

    def rows(self, step: int) -> list[int]:
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._batches = plan_epoch(self.data.lengths, self.step_batch, self.seed, epoch, min_rows=self.world)
        return self._batches[index]

    def counts(self, rows: list[int]) -> tuple[int, int]:
        return sum(self.data.lengths[i] for i in rows), sum(self.data.targets[i] for i in rows)


def _columns(rows) -> list[str]:
    names = getattr(rows, "column_names", None)
    return list(names) if names is not None else list(rows[0].keys())
