"""Checkpoints: resuming gives bit-identical weights; an interrupted save leaves the previous one intact."""

import json
import shutil

import pytest
import torch

from train_helpers import BF16_LORA, BF16_MASTER, FP32, qa_rows, settings, trainable_model
from tunesmith.errors import TunesmithError
from tunesmith.train import checkpoint as ckpt
from tunesmith.train import fit


def _train(run_dir, precision=FP32, resume=False, steps=8, fingerprint=None, method="lora", **overrides):
    model, tokenizer = trainable_model(method, precision, dropout=0.1)  # dropout: the RNG must be restored too
    config = settings(max_steps=steps, save_every=2, keep_checkpoints=3, batch_size=4, **overrides)
    result = fit(
        model,
        qa_rows(tokenizer, n=24),
        None,
        config,
        run_dir,
        pad_id=tokenizer.pad_token_id,
        precision=precision,
        resume=resume,
        progress=False,
        fingerprint=fingerprint,
    )
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}, result


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a)


def _log_steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("method", "precision"),
    [("lora", FP32), ("lora", BF16_LORA), ("full", BF16_MASTER)],
    ids=["fp32", "bf16", "full-bf16-master"],  # bf16-master: checkpoints hold the fp32 masters
)
def test_resume_from_a_checkpoint_ends_bit_identical(tmp_path, method, precision):
    whole, _ = _train(tmp_path / "whole", precision, method=method)

    _train(tmp_path / "cut", precision, method=method)
    folder = tmp_path / "cut" / "checkpoints"
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["step-4", "step-6", "step-8"]  # keep_checkpoints=3
    for late in ("step-6", "step-8"):  # as if the run had died after step 5
        shutil.rmtree(folder / late)
    resumed, result = _train(tmp_path / "cut", precision, resume=True, method=method)

    assert result.resumed_from == 4 and result.steps == 8
    _assert_identical(whole, resumed)
    assert _log_steps(tmp_path / "cut") == list(range(1, 9))  # records after step 4 were replaced, not doubled


def test_an_interrupted_save_leaves_the_previous_checkpoint_and_resume_recovers(tmp_path, monkeypatch):
    whole, _ = _train(tmp_path / "whole")

    real_save = ckpt._save
    calls = {"n": 0}

    def dying_save(tensors, path):
        calls["n"] += 1
        if "step-4" in str(path.parent) and path.name == "optimizer.safetensors":
            path.write_bytes(b"half a file")  # the process dies in the middle of writing
            raise KeyboardInterrupt
        real_save(tensors, path)

    monkeypatch.setattr(ckpt, "_save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "cut")
    monkeypatch.setattr(ckpt, "_save", real_save)

    folder = tmp_path / "cut" / "checkpoints"
    assert [p.name for p in ckpt.list_checkpoints(folder)] == ["step-2"]
    assert ckpt.read_state(folder / "step-2")["step"] == 2
    assert (folder / ".step-4.tmp").exists()  # the half-written one is not a checkpoint ...
    resumed, result = _train(tmp_path / "cut", resume=True)
    assert not (folder / ".step-4.tmp").exists()  # ... and is swept away on resume
    assert result.resumed_from == 2
    _assert_identical(whole, resumed)


def test_resuming_with_other_settings_is_refused_with_the_fields_named(tmp_path):
    _train(tmp_path, steps=2, fingerprint={"train.learning_rate": 0.001})
    with pytest.raises(TunesmithError, match="train.learning_rate"):
        _train(tmp_path, steps=2, resume=True, fingerprint={"train.learning_rate": 0.002})


def test_checkpoints_hold_only_trainable_weights_and_no_pickle(tmp_path):
    weights, _ = _train(tmp_path, steps=2)
    folder = ckpt.latest_checkpoint(tmp_path / "checkpoints")
    saved = ckpt.read_weights(folder)
    assert set(saved) == {f"model.{name}" for name in weights}
    assert sorted(p.name for p in folder.iterdir()) == [
        "optimizer.safetensors",
        "rng-0.safetensors",
        "state.json",
        "weights.safetensors",
    ]
