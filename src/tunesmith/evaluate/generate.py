"""Batched generation: prompts of similar length together, left padding, KV cache, stop on EOS.

Used by evaluation, compare and serving. Prompts are token ids (from
`tunesmith.data.tokenize.encode_prompt`), so every caller renders prompts exactly as training did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

StopReason = Literal["eos", "stop_string", "length"]


@dataclass(frozen=True)
class Generation:
    text: str  # the answer, cut before EOS / the stop string, special tokens removed
    token_ids: list[int]  # new tokens up to and including the stop string (never EOS or padding)
    stopped: StopReason  # why generation ended: EOS, a stop string, or max_new_tokens
    prompt_tokens: int
    new_tokens: int  # tokens the model generated, counting the EOS it stopped on


class StopStrings(StoppingCriteria):
    """Stops a row once its new text contains a stop string; remembers at which length it fired."""

    def __init__(self, tokenizer, stop_strings: tuple[str, ...], prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.stop_strings = stop_strings
        self.prompt_width = prompt_width
        longest = max(len(tokenizer(s, add_special_tokens=False).input_ids) for s in stop_strings)
        self.window = longest + 2  # a stop string can straddle a few tokens
        self.fired_at: dict[int, int] = {}  # row -> sequence length when it stopped

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        start = max(self.prompt_width, input_ids.shape[1] - self.window)
        for row in range(input_ids.shape[0]):
            if row in self.fired_at:
                done[row] = True
                continue
            tail = self.tokenizer.decode(input_ids[row, start:], skip_special_tokens=False)
            if any(stop in tail for stop in self.stop_strings):
                self.fired_at[row] = input_ids.shape[1]
                done[row] = True
        return done


def generate(
    model,
    tokenizer,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    stop_strings: tuple[str, ...] = (),
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Generation]:
    """Generate an answer for every prompt; results come back in input order.

    Prompts are sorted by length and generated `batch_size` at a time, left-padded, with the
    KV cache. Greedy when `temperature` is 0; otherwise sampled (reproducibly with `seed`).
    `progress`, if given, is called with the number of prompts finished after each batch.
    """
    if not prompts:
        return []
    eos_ids = eos_token_ids(model, tokenizer)
    stops = tuple(s for s in stop_strings if s and s != tokenizer.eos_token)
    config = _generation_config(model, tokenizer, eos_ids, max_new_tokens, temperature, top_p)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[Generation | None] = [None] * len(prompts)
    with torch.inference_mode(), torch.random.fork_rng(devices=_rng_devices(model)):
        if seed is not None:
            torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = _generate_batch(model, tokenizer, [prompts[i] for i in rows], config, eos_ids, stops)
            for i, generation in zip(rows, batch, strict=True):
                results[i] = generation
            if progress:
                progress(len(rows))
    return results  # type: ignore[return-value]


def _generate_batch(model, tokenizer, prompts, config, eos_ids: set[int], stops) -> list[Generation]:
    input_ids, attention_mask = left_pad(prompts, config.pad_token_id, _device(model))
    width = input_ids.shape[1]
    criteria = StopStrings(tokenizer, stops, width) if stops else None
    output = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        generation_config=config,
        stopping_criteria=StoppingCriteriaList([criteria] if criteria else []),
    )
    fired = criteria.fired_at if criteria else {}
    new = output[:, width:].tolist()  # [batch, new]
    return [
        _finish(tokenizer, prompt, ids, eos_ids, stops, fired.get(row, 0) - width)
        for row, (prompt, ids) in enumerate(zip(prompts, new, strict=True))
    ]


def _finish(tokenizer, prompt: list[int], ids: list[int], eos_ids, stops, stop_len: int) -> Generation:
    """Cut one row's new tokens at EOS, a stop string, or padding, and say why it stopped."""
    eos_at = next((k for k, token in enumerate(ids) if token in eos_ids), None)
    if stop_len > 0 and (eos_at is None or stop_len <= eos_at):
        kept = ids[:stop_len]
        raw = tokenizer.decode(kept, skip_special_tokens=False)
        cut = min((raw.find(s) for s in stops if s in raw), default=len(raw))
        return Generation(_strip_special(tokenizer, raw[:cut]), kept, "stop_string", len(prompt), stop_len)
    if eos_at is not None:
        kept = ids[:eos_at]
        text = tokenizer.decode(kept, skip_special_tokens=True)
        return Generation(text, kept, "eos", len(prompt), eos_at + 1)
    return Generation(tokenizer.decode(ids, skip_special_tokens=True), ids, "length", len(prompt), len(ids))


def _strip_special(tokenizer, text: str) -> str:
    for special in tokenizer.all_special_tokens:
        text = text.replace(special, "")
    return text


def left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """[batch, width] ids and attention mask, padded on the left (so every row ends together)."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, row in enumerate(rows):
        if row:
            ids[k, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[k, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def eos_token_ids(model, tokenizer) -> set[int]:
    """Every id that ends an answer: the tokenizer's EOS and the model's generation EOS ids."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return ids


def _generation_config(model, tokenizer, eos_ids, max_new_tokens: int, temperature: float, top_p: float):
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids, default=0)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {}
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        eos_token_id=sorted(eos_ids) or None,
        pad_token_id=pad_id,
        use_cache=True,
        **({"do_sample": False} | sampling),
    )


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _rng_devices(model) -> list[int]:
    device = _device(model)
    return [device.index or 0] if device.type == "cuda" else []
