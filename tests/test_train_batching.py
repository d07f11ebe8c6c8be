"""Batch plans are seeded, length-grouped and replayable; collate masks by length; packing isolates examples."""

import pytest
import torch

from tiny import tiny_model, tiny_tokenizer
from train_helpers import packed_rows, qa_rows
from tunesmith.train.attention import SHORT_MAX_WIDTH, SHORT_ROW_KERNEL, attention_for
from tunesmith.train.batching import collate, plan_epoch, split_step
from tunesmith.train.loss import IGNORE_INDEX
from tunesmith.train.objective import Objective


def test_plan_is_a_seeded_permutation_with_little_padding():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, 400, (1000,), generator=gen).tolist()
    plan = plan_epoch(lengths, 8, seed=1, epoch=0)

    assert sorted(i for batch in plan for i in batch) == list(range(1000))
    assert plan == plan_epoch(lengths, 8, seed=1, epoch=0)
    assert plan != plan_epoch(lengths, 8, seed=1, epoch=1) != plan_epoch(lengths, 8, seed=2, epoch=0)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in plan)
    assert padded / sum(lengths) < 1.05  # random batches would pad ~50% here
    assert max(lengths[i] for i in plan[0]) == max(lengths)  # the memory peak comes first


def test_plan_drops_a_tail_too_small_for_every_process():
    plan = plan_epoch([5] * 17, 8, seed=0, epoch=0, min_rows=2)
    assert sorted(len(b) for b in plan) == [8, 8]


def test_processes_split_a_step_batch_between_them_exactly():
    lengths = list(range(10, 26))
    rows = list(range(16))
    one = split_step(rows, lengths, micro_batches=2, rank=0, world=1)
    two = [split_step(rows, lengths, micro_batches=2, rank=r, world=2) for r in range(2)]
    assert [len(m) for m in one] == [8, 8]
    assert sorted(i for shard in two for micro in shard for i in micro) == sorted(rows)
    assert [len(m) for m in two[0]] == [len(m) for m in two[1]] == [4, 4]  # same number of passes everywhere


def test_collate_pads_right_and_masks_by_length_not_by_token_id():
    eos = 2
    rows = [{"input_ids": [5, 6, eos], "labels": [-100, 6, eos]}, {"input_ids": [7, eos], "labels": [7, eos]}]
    batch = collate(rows, pad_id=eos)  # pad id == EOS, as in SmolLM2
    assert batch.input_ids.tolist() == [[5, 6, eos], [7, eos, eos]]
    assert batch.labels.tolist() == [[-100, 6, eos], [7, eos, IGNORE_INDEX]]  # the real EOS stays trained
    assert batch.tokens == 5 and batch.targets == 3
    assert batch.position_ids is None


@pytest.mark.parametrize("device", [None, "cpu"], ids=["sdpa", "cpu-short-rows"])
def test_packed_rows_give_the_same_loss_as_the_examples_one_by_one(device):
    tokenizer = tiny_tokenizer()
    objective = Objective(tiny_model(tokenizer), device).eval()
    rows = qa_rows(tokenizer, n=6)
    packed = packed_rows(rows, width=10_000)
    assert len(packed) == 1

    with torch.no_grad():
        batch = collate(packed.to_list(), tokenizer.pad_token_id)
        packed_loss, packed_count = objective(batch.input_ids, batch.labels, batch.position_ids)
        singles = [collate([r], tokenizer.pad_token_id) for r in rows.to_list()]
        parts = [objective(b.input_ids, b.labels) for b in singles]
    assert packed_count.item() == sum(int(c) for _, c in parts) == batch.targets
    torch.testing.assert_close(packed_loss, sum(loss for loss, _ in parts), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("device", [None, "cpu"], ids=["sdpa", "cpu-short-rows"])
def test_right_padding_without_an_attention_mask_leaves_real_tokens_alone(device):
    tokenizer = tiny_tokenizer()
    objective = Objective(tiny_model(tokenizer), device).eval()
    rows = qa_rows(tokenizer, n=4).to_list()
    with torch.no_grad():
        batch = collate(rows, tokenizer.pad_token_id)
        together, _ = objective(batch.input_ids, batch.labels)
        singles = [collate([r], tokenizer.pad_token_id) for r in rows]
        apart = sum(objective(b.input_ids, b.labels)[0] for b in singles)
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-4)


def test_long_rows_are_cut_into_more_micro_batches_under_the_token_budget():
    lengths = [1000] * 6 + [100] * 10
    rows = list(range(16))
    one = split_step(rows, lengths, micro_batches=1, rank=0, world=1, max_tokens=2048)
    assert [len(m) for m in one] == [2, 2, 2, 10]  # 2 x 1000 tokens fit; the short rows go together
    assert all(len(m) * max(lengths[i] for i in m) <= 2048 for m in one)
    two = [split_step(rows, lengths, micro_batches=1, rank=r, world=2, max_tokens=2048) for r in range(2)]
    assert len(two[0]) == len(two[1])
    assert sorted(i for shard in two for micro in shard for i in micro) == rows


def test_short_batches_use_the_short_row_kernel_on_a_cpu_with_the_same_loss_and_gradients():
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer)
    lm_config = model.config
    rows = qa_rows(tokenizer, n=4).to_list()
    batch = collate(rows, tokenizer.pad_token_id)
    results = []
    for device in (None, "cpu"):
        model.zero_grad()
        loss, _ = Objective(model, device)(batch.input_ids, batch.labels)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
        assert lm_config._attn_implementation == ("sdpa" if device is None else SHORT_ROW_KERNEL)
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    lm_config._attn_implementation = "sdpa"
    wide = torch.full((1, SHORT_MAX_WIDTH + 1), 5)
    Objective(model, "cpu")(wide, wide)
    assert lm_config._attn_implementation == "sdpa"
    assert attention_for(SHORT_MAX_WIDTH, "cuda") == "sdpa"
    assert attention_for(SHORT_MAX_WIDTH, "cpu") == SHORT_ROW_KERNEL
