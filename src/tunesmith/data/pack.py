"""Padding-free packing: examples share a row, never attention.

Best-fit decreasing puts each example (longest first) into the open row with the least room
that still fits it. A packed row keeps its examples apart by `position_ids`, which restart at 0
for every example; attention implementations (and `collate`) derive the block-diagonal mask
from them. The first label of each example is masked: it would otherwise be predicted from the
previous example's last token.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from tunesmith.data.tokenize import IGNORE_INDEX

WINDOW = 10_000  # examples packed together
PACKED_COLUMNS = ["input_ids", "labels", "position_ids", "example", "source"]


def pack_bins(lengths: np.ndarray, capacity: int) -> list[list[int]]:
    """Group example indices into rows of at most `capacity` tokens (best-fit decreasing).

    Open rows are kept in buckets by free room; a bit mask of non-empty buckets finds the
    tightest fit in a few integer operations.
    """
    buckets: list[list[int]] = [[] for _ in range(capacity + 1)]  # free room -> open rows
    nonempty = 0  # bit r set when buckets[r] has a row
    bins: list[list[int]] = []
    room: list[int] = []
    for index in np.argsort(-np.asarray(lengths), kind="stable").tolist():
        length = min(int(lengths[index]), capacity)
        fits = nonempty >> length
        if fits:
            free = length + (fits & -fits).bit_length() - 1
            row = buckets[free].pop()
            if not buckets[free]:
                nonempty &= ~(1 << free)
        else:
            row, free = len(bins), capacity
            bins.append([])
            room.append(capacity)
        bins[row].append(index)
        room[row] = free - length
        buckets[room[row]].append(row)
        nonempty |= 1 << room[row]
    return bins


def pack_row(examples: list[dict]) -> dict:
    """Concatenate tokenized examples into one row with restarting position ids."""
    input_ids: list[int] = []
    labels: list[int] = []
    position_ids: list[int] = []
    for example in examples:
        input_ids += example["input_ids"]
        labels += [IGNORE_INDEX, *example["labels"][1:]]
        position_ids += range(len(example["input_ids"]))
    sources = ";".join(example["source"] for example in examples)
    # the canonical rows, as a JSON array, so that evaluation can still draw few-shot examples from them
    complete = all(example.get("example") for example in examples)
    together = "[" + ",".join(example["example"] for example in examples) + "]" if complete else ""
    return {
        "input_ids": input_ids, "labels": labels, "position_ids": position_ids, "example": together, "source": sources
    }


def pack_stream(batches: Iterable[dict[str, list]], capacity: int, window: int = WINDOW) -> Iterator[dict[str, list]]:
    """Packed rows from batches of examples (columns input_ids, labels, source).

    Examples are packed a window at a time (best-fit decreasing within each window), so memory
    stays bounded however many there are; with thousands per window the rows come out as full
    as with one global packing.
    """
    pending: list[dict] = []
    for batch in batches:
        names = list(batch)
        pending += [dict(zip(names, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        if len(pending) >= window:
            yield _pack_window(pending, capacity)
            pending = []
    if pending:
        yield _pack_window(pending, capacity)


def _pack_window(examples: list[dict], capacity: int) -> dict[str, list]:
    lengths = np.asarray([len(e["input_ids"]) for e in examples])
    rows = [pack_row([examples[i] for i in row]) for row in pack_bins(lengths, capacity)]
    return {name: [row[name] for row in rows] for name in PACKED_COLUMNS}
