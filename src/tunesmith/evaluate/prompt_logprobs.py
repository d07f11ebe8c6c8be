"""Token log-probabilities of a prompt (and of a few greedy tokens after it), in OpenAI's legacy
completions `logprobs` shape: what `echo: true` + `logprobs: N` asks of `/v1/completions`.

lm-evaluation-harness's `local-completions` model scores a continuation this way: it sends context +
continuation as the prompt with `echo: true, logprobs: 1, max_tokens: 1, temperature: 0` and sums
`token_logprobs[context_length:-1]`. The first prompt token has no logprob (None), as in OpenAI's API.
"""

from __future__ import annotations

import torch

CHUNK = 256  # positions per log-softmax: [CHUNK, vocab] floats at a time
MAX_TOKENS = 16  # greedy tokens after the prompt (each is one more forward pass over the whole sequence)


def scored_request_problem(stream: bool, n: int, temperature: float, max_tokens: int, echo: bool) -> tuple | None:
    """(field, message) when an echo / logprobs request asks for what this scoring cannot give, else None."""
    if stream:
        return "stream", "echo / logprobs are answered whole: send stream false"
    if n != 1:
        return "n", "echo / logprobs score one greedy continuation: send n 1"
    if max_tokens > MAX_TOKENS:
        return "max_tokens", f"with echo / logprobs, max_tokens is at most {MAX_TOKENS}"
    if max_tokens and temperature > 0:
        return "temperature", "echo / logprobs continue greedily: send temperature 0 (or max_tokens 0)"
    if not max_tokens and not echo:
        return "max_tokens", "max_tokens 0 returns nothing without echo: send echo true to score the prompt"
    return None


def prompt_logprobs(model, tokenizer, ids: list[int], *, top: int = 0, new_tokens: int = 0) -> dict:
    """{"token_ids", "text", "new_text", "logprobs": {tokens, token_logprobs, top_logprobs, text_offset}}
    for `ids` followed by `new_tokens` greedy tokens (their logprobs included).

    `top` > 0 gives each position's `top` most likely tokens ({token: logprob}, None at position 0).
    """
    device = next(model.parameters()).device
    sequence = list(ids)
    token_logprobs: list[float | None] = [None]
    tops: list[dict | None] = [None]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([sequence], device=device), use_cache=False).logits[0]
        for begin in range(0, len(sequence) - 1, CHUNK):  # prompt tokens 1.. under the positions before them
            block = torch.log_softmax(logits[begin : min(begin + CHUNK, len(sequence) - 1)].float(), dim=-1)
            targets = torch.tensor(sequence[begin + 1 : begin + 1 + block.shape[0]], device=block.device)
            token_logprobs += block[torch.arange(block.shape[0]), targets].tolist()
            tops += [_top(row, tokenizer, top) for row in block] if top else []
        for step in range(new_tokens):  # greedy tokens, each scored under the position before it
            last = torch.log_softmax(logits[-1].float(), dim=-1)
            chosen = int(last.argmax())
            token_logprobs.append(float(last[chosen]))
            tops += [_top(last, tokenizer, top)] if top else []
            sequence.append(chosen)
            if step + 1 < new_tokens:
                logits = model(input_ids=torch.tensor([sequence], device=device), use_cache=False).logits[0]
    tokens = [tokenizer.decode([token]) for token in sequence]
    offsets, position = [], 0
    for token in tokens:
        offsets.append(position)
        position += len(token)
    logprobs = {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops if top else None,
                "text_offset": offsets}  # fmt: skip
    return {"token_ids": sequence, "text": "".join(tokens), "new_text": "".join(tokens[len(ids) :]),
            "logprobs": logprobs}  # fmt: skip


def _top(row: torch.Tensor, tokenizer, k: int) -> dict[str, float]:
    values, indices = row.topk(k)
    return {tokenizer.decode([int(i)]): float(v) for v, i in zip(values.tolist(), indices.tolist(), strict=True)}


def scored_choices(model, tokenizer, prompts: list[list[int]], *, logprobs: int | None, max_tokens: int,
                   echo: bool) -> list[dict]:
    """One OpenAI completions choice per prompt: text (the prompt too when `echo`), `logprobs` (None
    unless asked for) and finish_reason; greedy, as lm-evaluation-harness asks (temperature 0)."""
    choices = []
    for index, ids in enumerate(prompts):
        scored = prompt_logprobs(model, tokenizer, ids, top=logprobs or 0, new_tokens=max_tokens)
        shown = scored["logprobs"]
        if not echo:  # only the generated tokens, offsets from the start of the new text
            cut = len(ids)
            shown = {key: (value[cut:] if value is not None else None) for key, value in shown.items()}
            shown["text_offset"] = [offset - (shown["text_offset"] or [0])[0] for offset in shown["text_offset"]]
        choices.append({"index": index, "text": scored["text"] if echo else scored["new_text"],
                        "logprobs": shown if logprobs is not None else None, "finish_reason": "length"})  # fmt: skip
    return choices
