"""Numbers for the data report: token lengths, truncation, padding waste, share of tokens trained."""

from __future__ import annotations

import numpy as np

from tunesmith.data.split import seeded_order


def length_summary(lengths: np.ndarray) -> dict[str, int]:
    """min, median, p95 and max of a length array (0s for an empty one)."""
    if len(lengths) == 0:
        return {"min": 0, "median": 0, "p95": 0, "max": 0}
    return {
        "min": int(lengths.min()), "median": int(np.median(lengths)),
        "p95": int(np.percentile(lengths, 95)), "max": int(lengths.max()),
    }


def padding_waste(lengths: np.ndarray, batch_size: int) -> float:
    """Share of a batch's tokens that are padding when rows (in this order) are padded to the longest."""
    if len(lengths) == 0:
        return 0.0
    padded = sum(int(chunk.max()) * len(chunk) for chunk in _chunks(lengths, batch_size))
    return round(1 - float(lengths.sum()) / padded, 4) if padded else 0.0


def padding_report(lengths: np.ndarray, packed_lengths: np.ndarray, batch_size: int, seed: int) -> dict:
    """Padding waste in shuffled batches, in length-grouped batches, and with packing."""
    shuffled = lengths[seeded_order(len(lengths), seed)]
    return {
        "batch_size": batch_size,
        "random": padding_waste(shuffled, batch_size),
        "length_grouped": padding_waste(np.sort(lengths), batch_size),
        "packed": padding_waste(packed_lengths, batch_size),
    }


def _chunks(values: np.ndarray, size: int):
    return (values[i:i + size] for i in range(0, len(values), size))
