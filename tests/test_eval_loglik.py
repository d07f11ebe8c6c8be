"""Shared-context scoring: each context runs once per batch, and every pair scores what a plain forward of
context + continuation gives (fp32), in input order, wrapped in peft or not, with or without `logits_to_keep`."""

import pytest
import torch

from tiny import tiny_model
from tunesmith.evaluate.loglik import continuation_logprobs, shared_context_logprobs

# (context length, continuation lengths): groups of several sizes, lengths 0 and 1 included
GROUPS = [(23, [5, 1, 3, 4]), (9, [2, 6, 1]), (1, [3]), (15, [0, 2]), (9, [4, 1, 2, 7, 3])]


def groups_of_pairs(vocab: int) -> list[tuple[list[int], list[int]]]:
    """The GROUPS as (context, continuation) pairs of random ids, the groups' pairs interleaved."""
    generator = torch.Generator().manual_seed(0)

    def ids(n: int) -> list[int]:
        return torch.randint(4, vocab, (n,), generator=generator).tolist()

    grouped = [[(context, ids(n)) for n in lengths] for context, lengths in ((ids(c), ls) for c, ls in GROUPS)]
    return [group[k] for k in range(max(map(len, grouped))) for group in grouped if k < len(group)]


def reference(model, context: list[int], answer: list[int]) -> float:
    """Sum of log p(answer token) from one unpadded forward of context + answer."""
    if not answer:
        return 0.0
    with torch.no_grad():
        logprobs = model(torch.tensor([context + answer])).logits[0].float().log_softmax(-1)
    return sum(logprobs[len(context) - 1 + k, token].item() for k, token in enumerate(answer))


@pytest.fixture
def pairs(tokenizer):
    return groups_of_pairs(len(tokenizer))


@pytest.mark.parametrize("batch_size", [1, 3, 4, 16])  # 3 and 4 split groups across batches
def test_shared_context_scores_equal_a_plain_forward(tokenizer, pairs, batch_size):
    model = tiny_model(tokenizer).eval()
    scored = shared_context_logprobs(model, pairs, pad_id=tokenizer.pad_token_id, batch_size=batch_size)
    assert [count for _, count in scored] == [len(answer) for _, answer in pairs]  # input order
    assert [total for total, _ in scored] == pytest.approx([reference(model, *pair) for pair in pairs], abs=1e-4)
    assert all(scored[i] == (0.0, 0) for i, (_, answer) in enumerate(pairs) if not answer)


def test_each_context_runs_once_per_batch(tokenizer, pairs):
    model = tiny_model(tokenizer).eval()
    shapes = []
    model.model.embed_tokens.register_forward_hook(lambda module, args, out: shapes.append(tuple(args[0].shape)))
    shared_context_logprobs(model, pairs, pad_id=tokenizer.pad_token_id, batch_size=16)
    rows = sum(1 for _, answer in pairs if answer)
    # the 5 distinct contexts padded to the longest, then every non-empty continuation but its last
    # token, padded to the longest (7 - 1) on its context's cache rows
    assert (rows, shapes) == (14, [(5, 23), (14, 6)])


def test_peft_wrapped_model(tokenizer, pairs):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)  # a non-zero adapter
    model = get_peft_model(tiny_model(tokenizer), lora).eval()
    scored = [total for total, _ in shared_context_logprobs(model, pairs, pad_id=tokenizer.pad_token_id, batch_size=5)]
    assert scored == pytest.approx([reference(model, *pair) for pair in pairs], abs=1e-4)
    with model.disable_adapter():
        assert scored != pytest.approx([reference(model, *pair) for pair in pairs], abs=1e-3)  # the adapter counts


def test_model_without_logits_to_keep(tokenizer, pairs):
    model = WithoutLogitsToKeep(tiny_model(tokenizer, seed=1).eval())
    scored = [total for total, _ in shared_context_logprobs(model, pairs, pad_id=tokenizer.pad_token_id, batch_size=5)]
    assert scored == pytest.approx([reference(model, *pair) for pair in pairs], abs=1e-4)


def test_same_numbers_as_the_full_sequence_path(tokenizer, pairs):
    model = tiny_model(tokenizer).eval()
    shared = shared_context_logprobs(model, pairs, pad_id=tokenizer.pad_token_id, batch_size=4)
    full = continuation_logprobs(model, pairs, pad_id=tokenizer.pad_token_id, batch_size=4)
    assert [c for _, c in shared] == [c for _, c in full]
    assert [t for t, _ in shared] == pytest.approx([t for t, _ in full], abs=1e-4)
    with pytest.raises(ValueError, match="non-empty context"):
        shared_context_logprobs(model, [([], [5])], pad_id=0)


class WithoutLogitsToKeep(torch.nn.Module):
    """A causal LM whose forward has no `logits_to_keep` (and takes its cache as `past_key_values`)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          cache=past_key_values, use_cache=use_cache)
