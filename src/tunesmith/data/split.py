"""Seeded train/test split that gives the same answer on every machine and library version.

The order is defined by arithmetic (a splitmix64 hash of seed and row number), not by a random
number generator whose stream could change between numpy releases.
"""

from __future__ import annotations

import math

import numpy as np

from tunesmith.errors import TunesmithError

_MASK = (1 << 64) - 1


def held_out_count(n_rows: int, test_size: float) -> int:
    """How many rows go to test: a fraction (< 1, rounded up) or a count (>= 1)."""
    count = math.ceil(n_rows * test_size) if test_size < 1 else int(test_size)
    if count >= n_rows:
        raise TunesmithError(
            f"data.test_size: {test_size} leaves no training rows out of {n_rows}; "
            "use a smaller fraction or count, or give data.test_path"
        )
    return max(count, 1)


def split_indices(n_rows: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices, each in ascending order."""
    if n_rows < 2:
        raise TunesmithError(f"data: {n_rows} usable row(s) cannot be split into train and test; add data")
    count = held_out_count(n_rows, test_size)
    order = seeded_order(n_rows, seed)
    return np.sort(order[count:]), np.sort(order[:count])


def seeded_order(n: int, seed: int) -> np.ndarray:
    """A permutation of range(n) fixed by the seed alone."""
    return np.argsort(_splitmix64(np.arange(n, dtype=np.uint64), seed), kind="stable")


def _splitmix64(values: np.ndarray, seed: int) -> np.ndarray:
    """A fixed 64-bit mix of each value with the seed (uint64 arithmetic wraps, as intended)."""
    with np.errstate(over="ignore"):
        x = values + np.uint64((seed * 0x9E3779B97F4A7C15) & _MASK)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def split_by_document(windows: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices keeping each document's windows on one side.

    `windows[i]` is 0 for a row that is a whole example, or k >= 1 for the k-th window of a long
    text (windows of one document are consecutive rows). test_size then counts documents. With a
    single document there is nothing to hold out whole, and its windows are split like rows.
    """
    document = np.cumsum(windows <= 1) - 1  # row -> the document it belongs to
    n_documents = int(document[-1]) + 1 if len(document) else 0
    if not np.any(windows > 0) or n_documents < 2:
        return split_indices(len(windows), test_size, seed)
    train_docs, test_docs = split_indices(n_documents, test_size, seed)
    in_test = np.isin(document, test_docs)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)
