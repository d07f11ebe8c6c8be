"""Rows' shared untrained prefix, run once per micro-batch: the same loss, gradients and training run."""

import json
import random

import pytest
import torch
from datasets import Dataset

from tiny import tiny_model, tiny_tokenizer
from train_helpers import FP32, settings, trainable_model
from tunesmith.config import LoraConfig
from tunesmith.data.collate import collate
from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import IGNORE_INDEX, encode_segments
from tunesmith.train import fit, methods, objective
from tunesmith.train.attention import use_attention
from tunesmith.train.objective import Objective
from tunesmith.train.shared_prefix import decode_with_shared_prefix, shared_prefix

SYSTEM = "Below is an instruction that describes a task."


def _batch(prefix=12, trained_from=14, lengths=(9, 14, 6), seed=0):
    """Rows that begin with the same `prefix` random tokens; labels from position `trained_from` on."""
    g = torch.Generator().manual_seed(seed)
    head = torch.randint(5, 300, (prefix,), generator=g)
    rows = [torch.cat([head, torch.randint(5, 300, (n,), generator=g)]) for n in lengths]
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        labels[i, trained_from : len(row)] = row[trained_from:]
    return ids, labels


def test_the_shared_prefix_stops_where_rows_differ_or_a_target_begins():
    ids, labels = _batch(prefix=12, trained_from=14)
    assert shared_prefix(ids, labels) == 12  # rows differ from token 12
    ids, labels = _batch(prefix=12, trained_from=10)
    assert shared_prefix(ids, labels) == 9  # labels[:, 10] is the target of position 9
    ids, labels = _batch(prefix=12, trained_from=14)
    assert shared_prefix(ids, labels, minimum=13) == 0  # too short to pay
    assert shared_prefix(ids[:1], labels[:1]) == 0  # one row shares with no one
    same = ids[:1].repeat(3, 1)
    assert shared_prefix(same, torch.full_like(same, IGNORE_INDEX)) == same.shape[1] - 1  # one position left


def _lora_model():
    model = methods.add_lora(tiny_model(tiny_tokenizer(), layers=2), LoraConfig(r=4, alpha=8, dropout=0.0),
                             seed=3)
    torch.manual_seed(5)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.2)  # the adapters change the output
    return model


def test_hidden_states_of_the_rows_are_those_of_the_whole_rows():
    model = _lora_model()
    decoder = methods.causal_lm(model).get_decoder()
    ids, _ = _batch()
    with torch.no_grad():
        whole = decoder(input_ids=ids, use_cache=False).last_hidden_state
        use_attention(methods.causal_lm(model), "tunesmith_shared_prefix")
        shared = decode_with_shared_prefix(decoder, ids, 12)
    torch.testing.assert_close(shared, whole[:, 12:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("short_max", [256, 0], ids=["short-row kernel", "sdpa"])
def test_loss_and_every_gradient_equal_the_unshared_rows(short_max):
    model = _lora_model()
    ids, labels = _batch()
    results = []
    for share in (False, True):
        model.zero_grad()
        loss, count = Objective(model, "cpu", short_max=short_max, share_prefix=share)(ids, labels)
        loss.backward()
        use_attention(methods.causal_lm(model), "sdpa")  # as loaded: the next objective starts from it
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results.append((loss.item(), int(count), grads))
    (loss_a, count_a, grads_a), (loss_b, count_b, grads_b) = results
    assert count_a == count_b == int((labels[:, 1:] != IGNORE_INDEX).sum())
    assert loss_b == pytest.approx(loss_a, rel=1e-6)
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-4, atol=1e-6, msg=name)


def _system_rows(tokenizer, n=32):
    """Question/answer rows that all begin with the same system prompt (as chat templates add one)."""
    rng = random.Random(0)
    template = resolve_template("chatml", tokenizer)
    ids_col, labels_col = [], []
    for _ in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"What is {a} plus {b}?"},
                    {"role": "assistant", "content": f"The answer is {a + b}."}]
        ids, labels = encode_segments(tokenizer, template.segments(messages))
        ids_col.append(ids)
        labels_col.append(labels)
    return Dataset.from_dict({"input_ids": ids_col, "labels": labels_col})


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_a_training_run_is_the_same_with_and_without_sharing(tmp_path, monkeypatch, compiled):
    calls = []

    def counted(*args):
        calls.append(args[2])
        return decode_with_shared_prefix(*args)

    monkeypatch.setattr(objective, "decode_with_shared_prefix", counted)
    losses = []
    for share in (False, True):
        model, tokenizer = trainable_model("lora", FP32)
        rows = _system_rows(tokenizer)
        batch = collate([rows[0], rows[1]], tokenizer.pad_token_id)
        assert shared_prefix(batch.input_ids, batch.labels) >= 8
        if compiled:
            assert methods.compile_layers(model)
        run = tmp_path / f"{share}"
        fit(model, rows, None, settings(max_steps=4, share_prefix=share), run, pad_id=tokenizer.pad_token_id,
            precision=FP32, progress=False, compiled=compiled)
        log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
        losses.append([r["loss"] for r in log if "loss" in r])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert len(calls) == 4 and min(calls) >= 8  # every step of the sharing run shared its prefix


def test_a_sliding_window_model_shares_only_batches_within_its_window(monkeypatch):
    calls = []

    def counted(*args):
        calls.append(args[2])
        return decode_with_shared_prefix(*args)

    monkeypatch.setattr(objective, "decode_with_shared_prefix", counted)
    model = _lora_model()
    ids, labels = _batch()  # 26 tokens wide
    methods.causal_lm(model).config.sliding_window = 16
    Objective(model, "cpu", share_prefix=True)(ids, labels)  # unshared: the mask would ignore the window
    assert calls == []
    methods.causal_lm(model).config.sliding_window = 64
    Objective(model, "cpu", share_prefix=True)(ids, labels)
    assert calls == [12]
