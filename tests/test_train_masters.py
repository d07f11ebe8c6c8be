"""Full fine-tuning with bf16 weights and fp32 master weights (train.full_weights: bf16-master)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from train_helpers import BF16_MASTER, FP32, qa_rows, settings, trainable_model
from tunesmith.errors import TunesmithError
from tunesmith.train import checkpoint as ckpt
from tunesmith.train import fit
from tunesmith.train.hardware import resolve_precision
from tunesmith.train.masters import MasterWeights

EMBED = "model.model.embed_tokens.weight"  # the Objective's name for the tied embedding / lm_head weight


def _fit(model, tokenizer, run_dir, precision, eval_rows=None, **overrides):
    return fit(model, qa_rows(tokenizer), eval_rows, settings(learning_rate=2e-3, **overrides), run_dir,
               pad_id=tokenizer.pad_token_id, precision=precision, progress=False)


def test_weights_are_bf16_in_each_step_and_the_optimizer_steps_their_fp32_masters(tmp_path):
    model, tokenizer = trainable_model("full", BF16_MASTER)
    seen = []  # at each forward of the decoder: the weights' dtypes and the tied embedding's values
    model.get_decoder().register_forward_pre_hook(
        lambda module, args: seen.append(({p.dtype for p in model.parameters()}, module.embed_tokens.weight.clone()))
    )
    _fit(model, tokenizer, tmp_path, BF16_MASTER, max_steps=4, save_every=1, keep_checkpoints=10)

    assert len(seen) == 4 and all(dtypes == {torch.bfloat16} for dtypes, _ in seen)
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied: one weight, one master
    losses = [json.loads(line)["loss"] for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0] * 0.9
    for step in (1, 2, 3):
        folder = tmp_path / "checkpoints" / f"step-{step}"
        masters, moments = load_file(folder / "weights.safetensors"), load_file(folder / "optimizer.safetensors")
        assert {t.dtype for t in masters.values()} == {torch.float32}
        assert {t.dtype for k, t in moments.items() if not k.endswith("::step")} == {torch.float32}
        assert EMBED in masters and not any("lm_head" in name for name in masters)
        # the next step runs on the masters rounded to bf16; the masters hold more than bf16 can
        assert torch.equal(seen[step][1], masters[EMBED].bfloat16())
        assert not torch.equal(masters[EMBED], masters[EMBED].bfloat16().float())
    last = load_file(tmp_path / "checkpoints" / "step-4" / "weights.safetensors")
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the masters became the weights
    assert all(torch.equal(p, last[f"model.{name}"]) for name, p in model.named_parameters())


def test_masters_start_from_the_fp32_weights_and_the_weights_are_those_rounded_to_bf16():
    """Not from bf16-rounded weights: a master on a rounding point keeps small updates out of its bf16 weight."""
    model, _ = trainable_model("full", FP32)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    masters = MasterWeights(model, ckpt.parameter_names(model))

    state = masters.state()
    assert state.keys() == before.keys() and all(torch.equal(state[n], before[n]) for n in before)
    assert all(torch.equal(p, before[n].bfloat16()) for n, p in model.named_parameters())
    assert model.lm_head.weight is model.model.embed_tokens.weight and len(masters.params) == len(before)


def test_held_out_loss_stays_within_half_a_percent_of_fp32_training(tmp_path):
    """Same init, data and settings: only how the weights are held differs."""
    losses = {}
    for name, precision in (("fp32", FP32), ("bf16-master", BF16_MASTER)):
        model, tokenizer = trainable_model("full", precision)
        held_out = qa_rows(tokenizer, n=32, seed=1)
        losses[name] = _fit(model, tokenizer, tmp_path / name, precision, eval_rows=held_out).eval_loss
    assert losses["bf16-master"] == pytest.approx(losses["fp32"], rel=5e-3)
    assert losses["fp32"] < 4.5  # trained: the untrained tiny model scores 5.85


def test_full_weights_auto_is_fp32_autocast_and_bf16_master_is_refused_where_it_cannot_apply(monkeypatch):
    monkeypatch.setattr("tunesmith.train.hardware.cpu_has_bf16", lambda: True)
    assert not resolve_precision("auto", "full", "cpu").master_weights  # measured slower on a CPU
    master = resolve_precision("auto", "full", "cpu", full_weights="bf16-master")
    assert (master.compute, master.frozen_weights, master.autocast, master.master_weights) == ("bf16", "bf16",
                                                                                               False, True)
    assert master.as_dict()["master_weights"] == "fp32"
    autocast = resolve_precision("auto", "full", "cpu", full_weights="fp32-autocast")
    assert (autocast.frozen_weights, autocast.autocast, autocast.master_weights) == ("fp32", True, False)
    assert not resolve_precision("auto", "full", "cpu", processes=2).master_weights  # DDP: fp32-autocast
    assert not resolve_precision("auto", "lora", "cpu").master_weights
    assert resolve_precision("fp32", "full", "cpu") == resolve_precision("fp32", "lora", "cpu")
    with pytest.raises(TunesmithError, match=r"full_weights: bf16-master.*precision is fp32.*fp32-autocast"):
        resolve_precision("fp32", "full", "cpu", full_weights="bf16-master")
    with pytest.raises(TunesmithError, match=r"train.full_weights: bf16-master.*2 processes"):
        resolve_precision("bf16", "full", "cpu", full_weights="bf16-master", processes=2)
