"""Packing fills rows without letting examples see each other; collation pads by length, not by id."""

import json

import numpy as np
import torch

from tunesmith.data.collate import collate
from tunesmith.data.pack import pack_bins, pack_row, pack_stream
from tunesmith.data.tokenize import IGNORE_INDEX

M = IGNORE_INDEX
A = {"input_ids": [1, 10, 11, 12, 2], "labels": [M, M, 11, 12, 2], "source": "d.jsonl:1"}
B = {"input_ids": [1, 20, 21, 2], "labels": [M, M, 21, 2], "source": "d.jsonl:2"}
C = {"input_ids": [30, 31, 32], "labels": [30, 31, 32], "source": "d.jsonl:3"}


def test_best_fit_decreasing_bins():
    assert pack_bins(np.array([5, 3, 4, 2, 6]), 8) == [[4, 3], [0, 1], [2]]
    lengths = np.random.default_rng(0).integers(1, 100, 500)
    bins = pack_bins(lengths, 128)
    assert sorted(i for row in bins for i in row) == list(range(500))  # every example exactly once
    assert max(int(lengths[row].sum()) for row in bins) <= 128
    assert lengths.sum() / (len(bins) * 128) > 0.97  # rows come out nearly full


def test_packed_row_restarts_positions_and_masks_each_first_label():
    row = pack_row([A, B, C])
    assert row["input_ids"] == [1, 10, 11, 12, 2, 1, 20, 21, 2, 30, 31, 32]
    assert row["position_ids"] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 2]
    assert row["labels"] == [M, M, 11, 12, 2, M, M, 21, 2, M, 31, 32]
    assert row["source"] == "d.jsonl:1;d.jsonl:2;d.jsonl:3" and row["example"] == ""
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
    assert starts == [0, 5, 9]  # sequence boundaries
    canonical = [{**e, "example": json.dumps({"n": n})} for n, e in enumerate([A, B, C])]
    assert json.loads(pack_row(canonical)["example"]) == [{"n": 0}, {"n": 1}, {"n": 2}]  # kept for few-shot


def test_pack_stream_packs_each_window_into_full_rows():
    examples = [A, B, C] * 4
    batches = [{k: [e[k] for e in examples[i:i + 5]] for k in ("input_ids", "labels", "source")} for i in (0, 5, 10)]
    packed = list(pack_stream(batches, 12))
    assert len(packed) == 1 and list(packed[0]) == ["input_ids", "labels", "position_ids", "example", "source"]
    rows = packed[0]["input_ids"]
    assert sum(len(r) for r in rows) == sum(len(e["input_ids"]) for e in examples)
    assert max(len(r) for r in rows) <= 12
    assert len(rows) == 5  # best-fit decreasing: 5+5 | 5+5 | 4+4+4 | 4+3+3 | 3+3
    for labels, positions in zip(packed[0]["labels"], packed[0]["position_ids"], strict=True):
        assert labels[0] == M and positions[0] == 0
    windows = [len(p["input_ids"]) for p in pack_stream(batches, 12, window=6)]
    assert windows == [4, 1]  # examples 1-10 (two batches reach the window), then 11-12


def test_packed_examples_do_not_attend_to_each_other(model):
    """Logits of each example inside a packed row equal its logits when run alone."""
    model.eval()
    row = pack_row([A, B, C])
    batch = collate([row, pack_row([C])], pad_id=0)
    assert batch.position_ids is not None  # no attention mask: the model derives it from the positions
    with torch.no_grad():
        packed = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits[0]
        start = 0
        for example in (A, B, C):
            alone = model(input_ids=torch.tensor([example["input_ids"]]), use_cache=False).logits[0]
            end = start + len(example["input_ids"])
            torch.testing.assert_close(packed[start:end], alone, atol=1e-5, rtol=1e-4)
            start = end
        # and without the restart, the second example *would* see the first: the check has teeth
        flat = torch.arange(len(row["input_ids"]))[None]
        leaky = model(input_ids=batch.input_ids[:1], position_ids=flat, use_cache=False).logits[0]
        assert not torch.allclose(leaky[5:9], packed[5:9], atol=1e-3)


def test_padding_is_masked_by_length_so_eos_keeps_its_label():
    eos = pad = 2
    batch = collate([A, {"input_ids": [1, 40, 2], "labels": [M, 40, 2]}], pad_id=pad)  # training's collator
    assert batch.input_ids.tolist() == [[1, 10, 11, 12, 2], [1, 40, 2, pad, pad]]
    assert batch.labels.tolist() == [[M, M, 11, 12, 2], [M, 40, eos, M, M]]
    assert (batch.tokens, batch.targets) == (8, 5)


def test_packed_padding_forms_its_own_sequence():
    batch = collate([pack_row([A, B]), pack_row([C])], pad_id=0)
    assert batch.position_ids[1].tolist() == [0, 1, 2, 0, 1, 2, 3, 4, 5]
    assert batch.labels[1].tolist() == [M, 31, 32] + [M] * 6
    assert batch.input_ids.dtype == torch.long
