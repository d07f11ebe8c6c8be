"""Fused q/k/v and gate/up projections compute what the separate modules compute, and keep peft's layout."""

import copy

import pytest
import torch

from tiny import tiny_model, tiny_tokenizer
from tunesmith.config import LoraConfig
from tunesmith.train import methods
from tunesmith.train.fused import fuse_projections


def _lora_pair(dropout: float = 0.0):
    """The same tiny LoRA model twice, B matrices non-zero so the adapters change the output."""
    tokenizer = tiny_tokenizer()
    base = tiny_model(tokenizer, layers=2)
    pair = []
    for _ in range(2):
        model = methods.add_lora(copy.deepcopy(base), LoraConfig(r=4, alpha=8, dropout=dropout), seed=3)
        torch.manual_seed(5)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.2)
        pair.append(model)
    return pair


def _loss_and_grads(model, ids, seed: int = 0):
    torch.manual_seed(seed)  # dropout masks: drawn in the same order (q, k, v) fused or not
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


IDS = torch.randint(5, 300, (3, 17), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_fused_lora_matches_separate_products(dropout):
    separate, fused = _lora_pair(dropout)
    assert fuse_projections(fused) == 4  # 2 layers x (q/k/v, gate/up)
    loss_a, grads_a = _loss_and_grads(separate, IDS)
    loss_b, grads_b = _loss_and_grads(fused, IDS)
    assert loss_b == pytest.approx(loss_a, rel=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-4, atol=1e-6, msg=name)


def test_fused_keeps_peft_layout_and_shares_frozen_storage():
    separate, fused = _lora_pair()
    fuse_projections(fused)
    assert list(fused.state_dict()) == list(separate.state_dict())
    for (name, a), b in zip(separate.state_dict().items(), fused.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    attention = methods.causal_lm(fused).model.layers[0].self_attn
    q, k, v = (getattr(attention, n).base_layer.weight for n in ("q_proj", "k_proj", "v_proj"))
    assert q.untyped_storage().data_ptr() == k.untyped_storage().data_ptr() == v.untyped_storage().data_ptr()
    assert not (q.requires_grad or k.requires_grad or v.requires_grad)


def test_disabled_and_merged_adapters_take_the_base_product():
    separate, fused = _lora_pair()
    fuse_projections(fused)
    with separate.disable_adapter(), fused.disable_adapter(), torch.no_grad():
        torch.testing.assert_close(fused(input_ids=IDS).logits, separate(input_ids=IDS).logits)
    with torch.no_grad():
        before = separate(input_ids=IDS).logits
        fused.merge_adapter()  # writes into the views, so the fused frozen weight holds the merge too
        torch.testing.assert_close(fused(input_ids=IDS).logits, before, rtol=1e-5, atol=1e-5)
        fused.unmerge_adapter()
        torch.testing.assert_close(fused(input_ids=IDS).logits, before, rtol=1e-5, atol=1e-5)


def test_fused_full_fine_tuning_trains_each_weight():
    tokenizer = tiny_tokenizer()
    separate = tiny_model(tokenizer)
    fused = copy.deepcopy(separate)
    fuse_projections(fused)
    loss_a, grads_a = _loss_and_grads(separate, IDS)
    loss_b, grads_b = _loss_and_grads(fused, IDS)
    assert loss_b == pytest.approx(loss_a, rel=1e-6)
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-4, atol=1e-6, msg=name)
    # trainable weights are not views: each keeps its own storage (and optimizer state)
    attention = fused.model.layers[0].self_attn
    assert attention.q_proj.weight.untyped_storage().data_ptr() != attention.k_proj.weight.untyped_storage().data_ptr()


@pytest.mark.slow
def test_fused_under_torch_compile_matches():
    separate, fused = _lora_pair()
    fuse_projections(fused)
    methods.compile_layers(fused)
    loss_a, grads_a = _loss_and_grads(separate, IDS)
    loss_b, grads_b = _loss_and_grads(fused, IDS)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-3, atol=1e-5, msg=name)


def test_the_decision_says_how_many_groups_were_fused():
    from tunesmith.config import TrainConfig
    from tunesmith.train.decisions import fused_decision

    assert fused_decision(TrainConfig(), 60).value == "60 groups"
    assert fused_decision(TrainConfig(fuse_projections=False), 0).value is False
    assert fused_decision(TrainConfig(fsdp=True), 0).source == "auto"
