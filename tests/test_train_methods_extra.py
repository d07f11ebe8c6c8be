"""DoRA, rsLoRA and NEFTune: each configured through peft / a hook, and each trains."""

import math

import pytest
import torch

from train_helpers import FP32, qa_rows, settings, trainable_model
from tunesmith.train import fit
from tunesmith.train.neftune import add_neftune


def _fit(model, tokenizer, tmp_path, **overrides):
    return fit(model, qa_rows(tokenizer, n=32), None, settings(max_steps=8, log_every=8, **overrides), tmp_path,
               pad_id=tokenizer.pad_token_id, precision=FP32, progress=False)


def _first_loss(tmp_path, **lora):
    model, tokenizer = trainable_model("lora", **lora)
    return fit(model, qa_rows(tokenizer, n=32), None, settings(max_steps=1), tmp_path / "first",
               pad_id=tokenizer.pad_token_id, precision=FP32, progress=False).final_loss


def test_dora_learns_a_magnitude_per_weight_and_trains(tmp_path):
    model, tokenizer = trainable_model("lora", use_dora=True)
    magnitudes = [n for n, p in model.named_parameters() if "lora_magnitude_vector" in n and p.requires_grad]
    assert len(magnitudes) == 2 * 7  # every linear of both layers
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n in magnitudes}
    result = _fit(model, tokenizer, tmp_path)
    assert result.final_loss < _first_loss(tmp_path)
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in before)


def test_rslora_scales_by_alpha_over_root_r():
    plain, _ = trainable_model("lora")  # r 8, alpha 16
    ranked, _ = trainable_model("lora", use_rslora=True)
    layer = "base_model.model.model.layers.0.self_attn.q_proj"
    assert plain.get_submodule(layer).scaling["default"] == 16 / 8
    assert ranked.get_submodule(layer).scaling["default"] == pytest.approx(16 / math.sqrt(8))


def test_neftune_noise_only_while_training_with_gradients():
    model, tokenizer = trainable_model("lora")
    ids = torch.tensor([[5, 6, 7, 8]])
    embeddings = model.get_input_embeddings()
    clean = embeddings(ids).detach()
    handle = add_neftune(model, alpha=5.0)
    model.train()
    noisy = embeddings(ids)
    bound = 5.0 / math.sqrt(4 * clean.shape[-1])
    assert 0 < (noisy - clean).abs().max() <= bound
    with torch.no_grad():
        assert torch.equal(embeddings(ids), clean)  # a reference forward or generation: no noise
    model.eval()
    assert torch.equal(embeddings(ids), clean)
    handle.remove()
    model.train()
    assert torch.equal(embeddings(ids), clean)


def test_neftune_changes_training_and_is_removed_after(tmp_path):
    plain, tokenizer = trainable_model("lora")
    noisy, _ = trainable_model("lora")
    a = _fit(plain, tokenizer, tmp_path / "a")
    b = _fit(noisy, tokenizer, tmp_path / "b", neftune_alpha=5.0)
    assert a.final_loss != b.final_loss
    assert not noisy.get_input_embeddings()._forward_hooks  # the hook does not outlive training
