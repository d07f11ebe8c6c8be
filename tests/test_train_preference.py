"""Preference objectives: loss values by hand, the LoRA reference, learning a preference, resume."""

import copy
import json
import math
import shutil

import pytest
import torch

from train_helpers import FP32, pair_rows, settings, trainable_model
from tunesmith.config import PreferenceConfig
from tunesmith.train import fit
from tunesmith.train.batching import TrainData, collate
from tunesmith.train.preference import PreferenceObjective, sequence_logps
from tunesmith.train.preference_loss import dpo_loss, orpo_loss, simpo_loss


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_dpo_loss_by_hand():
    # rewards: chosen 0.1 * (-2 - -3) = 0.1, rejected 0.1 * (-4 - -3) = -0.1; loss = -log sigmoid(0.2)
    loss, good, bad = dpo_loss(_t(-2.0), _t(-4.0), _t(-3.0), _t(-3.0), beta=0.1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.2)))
    assert good.item() == pytest.approx(0.1) and bad.item() == pytest.approx(-0.1)


def test_orpo_loss_by_hand():
    pc, pr = 0.5, 0.25  # mean token probabilities: odds 1 and 1/3, log odds ratio log 3
    loss, good, bad = orpo_loss(_t(math.log(pc)), _t(math.log(pr)), lam=0.1)
    expected = -math.log(pc) + 0.1 * math.log(1 + 1 / 3)  # NLL - lambda * log sigmoid(log 3)
    assert loss.item() == pytest.approx(expected)
    assert good.item() == pytest.approx(0.1 * math.log(pc)) and bad.item() == pytest.approx(0.1 * math.log(pr))


def test_simpo_loss_by_hand():
    # rewards 2 * -1 = -2 and 2 * -2 = -4; margin 2 - gamma 1 = 1; loss = log(1 + e^-1)
    loss, good, bad = simpo_loss(_t(-1.0), _t(-2.0), beta=2.0, gamma=1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)))
    assert (good.item(), bad.item()) == (pytest.approx(-2.0), pytest.approx(-4.0))


def test_simpo_and_orpo_normalise_by_length():
    model, tokenizer = trainable_model("lora")
    batch = collate(TrainData.from_rows(pair_rows(tokenizer, n=4)).rows, tokenizer.pad_token_id)
    sums, counts = sequence_logps(model, batch.input_ids, batch.labels)
    objective = PreferenceObjective(model, "simpo", PreferenceConfig())
    loss, pairs = objective(*batch.inputs())
    expected, _, _ = simpo_loss(sums[:4] / counts[:4], sums[4:] / counts[4:], 2.0, 1.0)
    assert pairs.item() == 4 and loss.item() == pytest.approx(expected.sum().item(), rel=1e-5)


def test_lora_reference_equals_the_base_models_logps():
    tokenizer_model, tokenizer = trainable_model("full")  # a plain copy of the same base weights
    base = copy.deepcopy(tokenizer_model).eval()
    model, _ = trainable_model("lora")
    with torch.no_grad():  # make the adapter matter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)
    batch = collate(TrainData.from_rows(pair_rows(tokenizer, n=6)).rows, tokenizer.pad_token_id)
    objective = PreferenceObjective(model.eval(), "dpo", PreferenceConfig())
    reference = objective.reference_logps(batch.input_ids, batch.labels)
    with torch.no_grad():
        expected, _ = sequence_logps(base, batch.input_ids, batch.labels)
        policy, _ = sequence_logps(model, batch.input_ids, batch.labels)
    torch.testing.assert_close(reference, expected)
    assert not torch.allclose(policy, expected)  # the adapter is on outside the reference


def _accuracy(model, rows, pad_id):
    batch = collate(TrainData.from_rows(rows).rows, pad_id)
    with torch.no_grad():
        sums, _ = sequence_logps(model.eval(), batch.input_ids, batch.labels)
    half = len(rows)
    return (sums[:half] > sums[half:]).double().mean().item()


@pytest.mark.parametrize("objective", ["dpo", "orpo", "simpo"])
def test_preference_tuning_raises_held_out_preference_accuracy(tmp_path, objective):
    model, tokenizer = trainable_model("lora")
    held_out = pair_rows(tokenizer, n=40, seed=7)
    before = _accuracy(model, held_out, tokenizer.pad_token_id)
    config = settings(max_steps=30, batch_size=8, learning_rate=1e-2, objective=objective)
    result = fit(model.train(), pair_rows(tokenizer, n=64), held_out, config, tmp_path,
                 pad_id=tokenizer.pad_token_id, precision=FP32, progress=False)
    after = _accuracy(model, held_out, tokenizer.pad_token_id)
    assert after >= before + 0.25 and after >= 0.8, (before, after)
    records = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    train = [r for r in records if "loss" in r]
    assert {"reward_accuracy", "reward_margin", "logps_chosen", "logps_rejected"} <= train[-1].keys()
    assert train[-1]["reward_margin"] > train[0]["reward_margin"]
    assert "eval_reward_accuracy" in records[-1] and result.eval_loss is not None


def _dpo_run(run_dir, method, resume=False):
    model, tokenizer = trainable_model(method, dropout=0.1 if method == "lora" else 0.0)
    config = settings(max_steps=6, save_every=2, keep_checkpoints=3, batch_size=4, objective="dpo",
                      learning_rate=1e-3)
    result = fit(model, pair_rows(tokenizer, n=16), None, config, run_dir, pad_id=tokenizer.pad_token_id,
                 precision=FP32, resume=resume, progress=False)
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}, result


@pytest.mark.parametrize("method", ["lora", "full"])
def test_dpo_resume_is_bit_identical(tmp_path, method):
    whole, _ = _dpo_run(tmp_path / "whole", method)
    _dpo_run(tmp_path / "cut", method)
    folder = tmp_path / "cut" / "checkpoints"
    shutil.rmtree(folder / "step-6")
    resumed, result = _dpo_run(tmp_path / "cut", method, resume=True)
    assert result.resumed_from == 4
    assert all(torch.equal(whole[n], resumed[n]) for n in whole)
    if method == "full":  # reference log-probs: computed once with the initial weights, read back on resume
        saved = json.loads((tmp_path / "cut" / "reference_logps.json").read_text())
        assert len(saved["train"]) == 16 and all(c < 0 and r < 0 for c, r in saved["train"])


def test_a_preference_objective_on_sft_rows_says_what_data_it_needs(tmp_path):
    from train_helpers import qa_rows
    from tunesmith.errors import TunesmithError

    model, tokenizer = trainable_model("lora")
    with pytest.raises(TunesmithError, match=r"needs \{prompt, chosen, rejected\} rows.*tunesmith pairs"):
        fit(model, qa_rows(tokenizer, n=8), None, settings(objective="orpo"), tmp_path,
            pad_id=tokenizer.pad_token_id, precision=FP32, progress=False)


def test_sft_on_preference_rows_trains_on_the_chosen_side():
    _, tokenizer = trainable_model("lora")
    rows = pair_rows(tokenizer, n=4)
    data = TrainData.from_rows(rows, pairs=False)
    assert data.rows == [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows]
