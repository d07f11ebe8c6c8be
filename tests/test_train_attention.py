"""The CPU short-row attention kernel: SDPA's fused forward, a matmul backward from the saved log-sum-exp."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tunesmith.train.attention import short_row_attention

B, HEADS, KV_HEADS, T, D = 2, 4, 2, 11, 8


def _module(groups: int = HEADS // KV_HEADS) -> nn.Module:
    module = nn.Module()
    module.num_key_value_groups, module.is_causal = groups, True
    return module


def _qkv(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(B, HEADS, T, D), (B, KV_HEADS, T, D), (B, KV_HEADS, T, D)]
    return [torch.randn(shape, generator=gen, requires_grad=True) for shape in shapes]


def _outputs_and_grads(attend, q, k, v):
    out = attend(q, k, v)
    out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    return out.detach(), grads


def _reference(mask=None):
    def attend(q, k, v):
        groups = HEADS // KV_HEADS
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)
        return out.transpose(1, 2)

    return attend


def _short_rows(mask=None):
    return lambda q, k, v: short_row_attention(_module(), q, k, v, mask)[0]


def _block_causal_mask():
    """Two packed sequences per row (6 + 5 tokens): causal inside each, nothing across."""
    doc = torch.tensor([0] * 6 + [1] * 5)
    same = doc[:, None] == doc[None, :]
    return (same & torch.ones(T, T, dtype=torch.bool).tril()).expand(B, 1, T, T)


@pytest.mark.parametrize(
    "mask",
    [None, _block_causal_mask(), _block_causal_mask()[:1], _block_causal_mask().expand(B, HEADS, T, T).clone()],
    ids=["causal", "packed-mask", "one-mask-for-the-batch", "a-mask-per-head"],
)
def test_outputs_and_gradients_match_sdpa_with_grouped_query_heads(mask):
    q, k, v = _qkv()
    expected_out, expected_grads = _outputs_and_grads(_reference(mask), q, k, v)
    out, grads = _outputs_and_grads(_short_rows(mask), q, k, v)
    torch.testing.assert_close(out, expected_out, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_bf16_stays_close_to_fp32():
    q, k, v = _qkv(seed=1)
    exact_out, exact_grads = _outputs_and_grads(_short_rows(), q, k, v)
    low = [t.detach().bfloat16().requires_grad_() for t in (q, k, v)]
    out, grads = _outputs_and_grads(_short_rows(), *low)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), exact_out, rtol=0.05, atol=0.02)
    for got, want in zip(grads, exact_grads, strict=True):
        torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.05)


def test_a_row_that_may_see_nothing_gets_zero_gradient_not_nan():
    mask = torch.ones(B, 1, T, T, dtype=torch.bool).tril()
    mask[:, :, 3] = False  # query 3 sees no key
    q, k, v = _qkv()
    _, (grad_q, grad_k, grad_v) = _outputs_and_grads(_short_rows(mask), q, k, v)
    assert all(torch.isfinite(g).all() for g in (grad_q, grad_k, grad_v))
    assert grad_q[:, :, 3].abs().max() == 0


def test_attention_dropout_falls_back_to_sdpa():
    q, k, v = _qkv()
    torch.manual_seed(3)
    ours = short_row_attention(_module(), q, k, v, None, dropout=0.5)[0]
    torch.manual_seed(3)
    k2, v2 = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
    sdpa = F.scaled_dot_product_attention(q, k2, v2, dropout_p=0.5, is_causal=True).transpose(1, 2)
    torch.testing.assert_close(ours, sdpa)


def test_under_autocast_mixed_input_dtypes_run_in_the_autocast_dtype():
    q, k, v = _qkv()  # rotary leaves q and k in fp32 when the residual stream is fp32; v comes from a bf16 matmul
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = short_row_attention(_module(), q, k, v.bfloat16(), None)[0]
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), _reference()(q, k, v).detach(), rtol=0.05, atol=0.02)
