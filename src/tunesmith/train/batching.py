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

from tunesmith.data.collate import PREFERENCE_COLUMNS, Batch, collate
from tunesmith.data.tokenize import IGNORE_INDEX
from tunesmith.errors import TunesmithError

__all__ = [
    "PREFERENCE_COLUMNS", "Batch", "StepPlan", "TrainData", "collate", "plan_epoch", "split_step", "target_count",
]

GROUP_BATCHES = 64  # batches sorted together: large enough to cut padding, small enough to stay random
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
