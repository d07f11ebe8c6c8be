"""The chunked completion loss equals the standard full-logits loss, value and gradients."""

import pytest
import torch
import torch.nn.functional as F

from tunesmith.train.loss import IGNORE_INDEX, completion_loss, linear_cross_entropy


def _reference(hidden, weight, labels):
    """What a Hugging Face causal LM computes: full logits, shift, CE summed over labels != -100."""
    logits = hidden @ weight.T  # [B, T, V]
    shift_logits = logits[:, :-1].reshape(-1, weight.shape[0]).float()
    shift_labels = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX, reduction="sum")


def _inputs(seed=0, batch=3, length=11, hidden=16, vocab=50):
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, length, hidden, generator=gen, dtype=torch.float64).float()
    w = torch.randn(vocab, hidden, generator=gen).float() * 0.5
    labels = torch.randint(0, vocab, (batch, length), generator=gen)
    labels[0, :5] = IGNORE_INDEX  # a masked prompt
    labels[1, 7:] = IGNORE_INDEX  # padding
    labels[2, ::3] = IGNORE_INDEX  # scattered
    return h, w, labels


@pytest.mark.parametrize(("chunk", "compiled"), [(1, False), (4, False), (1024, False), (4, True)])
def test_loss_and_gradients_equal_full_logits_in_fp32(chunk, compiled):
    h, w, labels = _inputs()
    h1, w1 = h.clone().requires_grad_(), w.clone().requires_grad_()
    h2, w2 = h.clone().requires_grad_(), w.clone().requires_grad_()

    loss, count = completion_loss(h1, w1, labels, chunk=chunk, compiled=compiled)
    expected = _reference(h2, w2, labels)
    (loss * 0.7).backward()
    (expected * 0.7).backward()

    assert count.item() == int((labels[:, 1:] != IGNORE_INDEX).sum())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-5, atol=1e-6)


def test_frozen_head_gets_no_gradient_and_hidden_still_does():
    h, w, labels = _inputs(seed=1)
    h1 = h.clone().requires_grad_()
    loss, _ = completion_loss(h1, w, labels, chunk=5)
    loss.backward()
    h2 = h.clone().requires_grad_()
    _reference(h2, w, labels).backward()
    assert w.grad is None
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-5, atol=1e-6)


def test_without_grad_mode_matches_and_builds_no_graph():
    h, w, labels = _inputs(seed=2)
    with torch.no_grad():
        loss, _ = completion_loss(h.requires_grad_(), w, labels, chunk=3)
    assert not loss.requires_grad
    assert loss.item() == pytest.approx(_reference(h.detach(), w, labels).item(), rel=1e-5)


def test_all_prompt_batch_gives_zero_loss_that_still_backpropagates():
    h, w, _ = _inputs(seed=3)
    h.requires_grad_()
    labels = torch.full(h.shape[:2], IGNORE_INDEX)
    loss, count = completion_loss(h, w, labels)
    loss.backward()
    assert count.item() == 0 and loss.item() == 0.0
    assert torch.count_nonzero(h.grad) == 0


def test_bf16_inputs_stay_close_to_fp32_and_loss_is_fp32():
    h, w, labels = _inputs(seed=4, hidden=64, vocab=300)
    keep = labels[:, 1:] != IGNORE_INDEX
    targets, selected = labels[:, 1:][keep], h[:, :-1][keep]
    exact = linear_cross_entropy(selected, w, targets)
    low = linear_cross_entropy(selected.bfloat16(), w.bfloat16(), targets)
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(exact.item(), rel=2e-2)


def test_compiled_block_gives_the_eager_block_loss_and_gradient_in_bf16():
    from tunesmith.train.loss import _compiled_block, block_loss_and_grad

    gen = torch.Generator().manual_seed(5)
    logits = (torch.randn(7, 300, generator=gen) * 4).bfloat16()
    targets = torch.randint(0, 300, (7,), generator=gen)
    eager_loss, eager_grad = block_loss_and_grad(logits.clone(), targets)
    loss, grad = _compiled_block()(logits, targets)
    assert grad.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert loss.item() == pytest.approx(eager_loss.item(), rel=1e-5)
    torch.testing.assert_close(grad.float(), eager_grad.float(), rtol=1e-2, atol=4e-3)  # one bf16 rounding
    assert grad.float().sum(dim=1).abs().max() < 0.02  # softmax minus one-hot: each row sums to 0


def test_under_autocast_fp32_hidden_states_run_the_head_in_the_autocast_dtype():
    """Full fine-tuning hands the head fp32 hidden states; its matmuls still run in bf16, gradients come back fp32."""
    h, w, labels = _inputs(seed=6, hidden=64, vocab=300)
    keep = labels[:, 1:] != IGNORE_INDEX
    targets, selected = labels[:, 1:][keep], h[:, :-1][keep]
    hidden, weight = selected.clone().requires_grad_(), w.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = linear_cross_entropy(hidden, weight, targets)
    auto.backward()
    low = linear_cross_entropy(selected.bfloat16(), w.bfloat16(), targets)
    exact = linear_cross_entropy(selected, w, targets)
    assert auto.item() == low.item() != exact.item()
    assert hidden.grad.dtype == weight.grad.dtype == torch.float32


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_a_bf16_head_weight_without_autocast_gets_bf16_gradients_close_to_fp32(compiled):
    """Full fine-tuning with bf16 weights (train.full_weights: bf16-master): bf16 hidden states and head weight,
    no autocast. The head's gradient adds up over blocks in fp32 and is rounded to bf16 once."""
    h, w, labels = _inputs(seed=7, hidden=64, vocab=300)
    h, w = h.bfloat16(), w.bfloat16()
    hidden, weight = h.clone().requires_grad_(), w.clone().requires_grad_()
    loss, _ = completion_loss(hidden, weight, labels, chunk=8, compiled=compiled)
    (loss * 0.5).backward()
    h32, w32 = h.float().requires_grad_(), w.float().requires_grad_()  # the same bf16 values, computed in fp32
    expected = _reference(h32, w32, labels)
    (expected * 0.5).backward()

    assert loss.dtype == torch.float32 and hidden.grad.dtype == weight.grad.dtype == torch.bfloat16
    assert loss.item() == pytest.approx(expected.item(), rel=1e-2)
    torch.testing.assert_close(weight.grad.float(), w32.grad, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(hidden.grad.float(), h32.grad, rtol=2e-2, atol=2e-2)
