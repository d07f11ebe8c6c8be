"""The split is seeded, reproducible to the index, and sized as asked."""

import numpy as np
import pytest

from tunesmith.data.split import held_out_count, split_indices
from tunesmith.errors import TunesmithError


def test_same_seed_same_split_and_pinned_across_machines():
    train, test = split_indices(20, 0.2, seed=42)
    again_train, again_test = split_indices(20, 0.2, seed=42)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    # pinned: the order is pure uint64 arithmetic, so these never change with numpy or the machine
    assert test.tolist() == PINNED_TEST


PINNED_TEST = [0, 11, 13, 15]


def test_a_different_seed_gives_a_different_split():
    assert split_indices(1000, 0.1, seed=1)[1].tolist() != split_indices(1000, 0.1, seed=2)[1].tolist()


@pytest.mark.parametrize(("n", "size", "expected"), [(100, 0.1, 10), (101, 0.1, 11), (100, 7, 7), (5, 0.01, 1)])
def test_fraction_rounds_up_and_count_is_exact(n, size, expected):
    train, test = split_indices(n, size, seed=0)
    assert len(test) == expected == held_out_count(n, size)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(n))


def test_test_size_that_leaves_no_training_rows_is_an_error():
    with pytest.raises(TunesmithError, match="test_size"):
        split_indices(10, 10, seed=0)
    with pytest.raises(TunesmithError, match="cannot be split"):
        split_indices(1, 0.5, seed=0)
