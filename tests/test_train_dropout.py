"""FastDropout behaves like dropout: keep rate, scaling, gradient, eval mode, seeded; peft's are swapped."""

import torch
from torch import nn

from tiny import tiny_model
from tunesmith.config import LoraConfig
from tunesmith.train.dropout import FastDropout
from tunesmith.train.methods import add_lora


def test_keeps_each_element_with_probability_one_minus_p_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(400, 500)
    y = FastDropout(0.1).train()(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.005
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.9))


def test_gradient_is_the_mask_and_eval_mode_is_identity():
    torch.manual_seed(1)
    drop = FastDropout(0.3).train()
    x = torch.randn(64, 33, dtype=torch.bfloat16, requires_grad=True)
    y = drop(x)
    y.sum().backward()
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(x.grad, (y.detach() != 0).to(x.dtype) / 0.7)
    assert drop.eval()(x) is x


def test_same_seed_same_mask():
    drop = FastDropout(0.05).train()
    x = torch.ones(7, 13)
    torch.manual_seed(5)
    first = drop(x)
    torch.manual_seed(5)
    assert torch.equal(first, drop(x))


def test_lora_layers_get_fast_dropout_only_when_dropout_is_on():
    with_dropout = add_lora(tiny_model(), LoraConfig(r=4, dropout=0.05), seed=0)
    without = add_lora(tiny_model(), LoraConfig(r=4, dropout=0.0), seed=0)
    kinds = {type(m) for m in with_dropout.modules() if isinstance(m, nn.Module)}
    assert FastDropout in kinds and nn.Dropout not in kinds
    assert not any(isinstance(m, FastDropout) for m in without.modules())


def test_compiled_dropout_hashes_a_fresh_mask_per_call_with_the_same_statistics():
    """Under torch.compile the mask comes from a hash of (index, seed): same keep rate and scaling,
    neighbours independent, a new seed per call and per module, the gradient is the mask."""
    first, second = FastDropout(0.3).train(), FastDropout(0.3).train()

    def twice(x):  # two dropouts on one input in one graph: their seeds must not be merged
        return first(x), second(x)

    compiled = torch.compile(twice, fullgraph=True)
    torch.manual_seed(3)
    x = torch.ones(400, 500, requires_grad=True)
    a, b = compiled(x)
    kept = a != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    assert torch.allclose(a[kept], torch.full_like(a[kept], 1 / 0.7))
    both_dropped = (~kept[:, :-1] & ~kept[:, 1:]).float().mean().item()
    assert abs(both_dropped - 0.09) < 0.005  # P(dropped)^2: neighbouring draws are independent
    assert abs((~kept & (b == 0)).float().mean().item() - 0.09) < 0.005  # the two masks are independent
    a.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.7)

    again, _ = compiled(x)
    assert not torch.equal(again, a)  # a new seed on every call
    torch.manual_seed(3)
    assert torch.equal(compiled(x)[0], a)  # ... drawn from torch's seeded generator
