"""A tiny Llama whose preferences are known: the next token depends only on the current one.

`scripted_model(tokenizer, successors)` zeroes every attention and MLP output, so the residual
stream at a position is the embedding of its token, and sets the (untied) LM head so that token
`a` predicts `successors[a]`. Embeddings are orthogonal, so the logits are exact: `HIDDEN * scale`
for the successor and 0 for every other token. Generation then follows the script, and
log-likelihoods are known in closed form (`successor_logprob`).
The tests below check that the helper itself behaves as promised.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

HIDDEN = 384  # >= the tiny vocabulary, so token embeddings can be orthogonal


def scripted_model(tokenizer, successors: dict[int, int], seed: int = 0, scale: float = 1.0) -> LlamaForCausalLM:
    """A 1-layer Llama that maps token a -> successors[a]; unscripted tokens predict EOS."""
    torch.manual_seed(seed)
    vocab = len(tokenizer)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        basis, _ = torch.linalg.qr(torch.randn(HIDDEN, HIDDEN))
        embed = basis[:vocab] * HIDDEN**0.5  # orthogonal rows with RMS 1, untouched by RMSNorm
        model.model.embed_tokens.weight.copy_(embed)
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        head = torch.zeros(vocab, HIDDEN)
        for token in range(vocab):
            head[successors.get(token, tokenizer.eos_token_id)] += embed[token]
        model.lm_head.weight.copy_(head * scale)
    return model


def successor_logprob(tokenizer, scale: float) -> tuple[float, float]:
    """(log p(successor), log p(any other token)) for a model built with this `scale`."""
    top = HIDDEN * scale
    log_norm = torch.logsumexp(torch.tensor([top] + [0.0] * (len(tokenizer) - 1)), 0).item()
    return top - log_norm, -log_norm


def script(tokenizer, text: str) -> dict[int, int]:
    """Successors that make the model continue any token of `text` with the next one of `text`."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert len(set(ids)) == len(ids), f"{text!r} repeats a token: a bigram script cannot follow it"
    return dict(zip(ids, ids[1:], strict=False))


def test_scripted_model_follows_its_script(tokenizer):
    ids = tokenizer("Paris is the capital of France.", add_special_tokens=False).input_ids
    model = scripted_model(tokenizer, script(tokenizer, "Paris is the capital of France."))
    logits = model(torch.tensor([ids])).logits[0]
    assert logits.argmax(-1).tolist() == ids[1:] + [tokenizer.eos_token_id]
    probs = logits.softmax(-1)
    assert probs[0, ids[1]] > 0.99  # a large margin: preferences are unambiguous


def test_scripted_model_ignores_context(tokenizer):
    successors = {5: 6, 6: 7}
    model = scripted_model(tokenizer, successors)
    a = model(torch.tensor([[9, 8, 5]])).logits[0, -1]
    b = model(torch.tensor([[5]])).logits[0, -1]
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_scripted_model_logprobs_are_known(tokenizer):
    model = scripted_model(tokenizer, {5: 6}, scale=0.01)
    logprobs = model(torch.tensor([[5]])).logits[0, -1].log_softmax(-1)
    hit, miss = successor_logprob(tokenizer, 0.01)
    assert abs(logprobs[6].item() - hit) < 1e-3 and abs(logprobs[7].item() - miss) < 1e-3
