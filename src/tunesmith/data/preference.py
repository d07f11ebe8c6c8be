"""Preference rows {prompt, chosen, rejected}: recognise them, canonicalise, tokenize the rejected side, check.

Two shapes, as TRL reads them:
- plain strings: {"prompt": "...", "chosen": "...", "rejected": "..."};
- conversational: "prompt" a list of messages (system/user/assistant turns ending with the user's),
  "chosen" and "rejected" each a list holding the assistant's message (or a string). Without a
  "prompt" column, "chosen" and "rejected" are whole conversations whose shared first turns are the prompt.

The canonical example is an ordinary chat example whose last assistant turn is the chosen answer,
plus "rejected": the other answer's text. Everything SFT does with an example (template, truncation,
masking the prompt, generation at eval time with chosen as the reference) applies unchanged; the
rejected side is the same example with its last turn swapped (`rejected_example`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunesmith.data.checks import Check, Sources
from tunesmith.data.formats import RowProblem, _message, _messages, _text

FIELDS = ("prompt", "chosen", "rejected")
IMPLICIT = ("chosen", "rejected")  # TRL's implicit-prompt shape: two whole conversations
COLUMNS = ["rejected_input_ids", "rejected_labels"]
NUMBERS = ["rejected_response_kept", "rejected_response_tokens", "same_answer", "same_after_truncation"]
LENGTH_BIAS = 0.75  # share of pairs whose chosen answer is the longer one, above which the report warns


def canonical(row: dict, columns: dict[str, str], system_prompt: str | None = None) -> dict:
    """One raw preference row -> {"messages": prompt + [chosen], "input": "", "rejected": str}. Raises RowProblem."""
    if columns.get("prompt") in row:
        prompt = _prompt(row, columns)
        chosen, rejected = _answer(row, columns, "chosen"), _answer(row, columns, "rejected")
    else:
        prompt, chosen, rejected = _split_conversations(row, columns)
    if system_prompt and prompt[0]["role"] != "system":
        prompt.insert(0, {"role": "system", "content": system_prompt})
    return {"messages": [*prompt, {"role": "assistant", "content": chosen}], "input": "", "rejected": rejected}


def rejected_example(example: dict) -> dict:
    """The same example answered with the rejected text."""
    messages = [*example["messages"][:-1], {"role": "assistant", "content": example["rejected"]}]
    return {"messages": messages, "input": example.get("input", "")}


def encode_rejected(encoder, examples: list[dict], chosen: list) -> dict[str, list]:
    """Columns of the rejected sides (COLUMNS) and the per-pair numbers the checks read (NUMBERS)."""
    encoded = encoder.encode_many([rejected_example(e) for e in examples])
    return {
        "rejected_input_ids": [e.input_ids for e in encoded],
        "rejected_labels": [e.labels for e in encoded],
        "rejected_response_kept": [e.response_kept for e in encoded],
        "rejected_response_tokens": [e.response_tokens for e in encoded],
        "same_answer": [e["messages"][-1]["content"].strip() == e["rejected"].strip() for e in examples],
        "same_after_truncation": [c.input_ids == r.input_ids for c, r in zip(chosen, encoded, strict=True)],
    }


def check_pairs(numbers: dict[str, np.ndarray], sources: Sources) -> list[Check]:
    """The preference checks: identical sides, a side truncated away, and length bias."""
    same = np.flatnonzero(numbers["same_answer"])
    cut_same = np.flatnonzero(numbers["same_after_truncation"] & ~numbers["same_answer"])
    empty = np.flatnonzero((numbers["response_kept"] == 0) | (numbers["rejected_response_kept"] == 0))
    checks = [
        _found("chosen_equals_rejected", same, "pairs whose chosen and rejected answers are the same text: "
               "nothing to prefer; remove or fix them", sources),
        _found("pair_truncated_to_same", cut_same, "pairs that become identical after truncation to "
               "data.max_length (the answers differ only past the cut): raise data.max_length", sources),
        _found("pair_side_truncated_away", empty, "pairs with a side whose whole answer was truncated away: "
               "raise data.max_length or use data.truncation_side: left", sources),
    ]
    chosen, rejected = numbers["response_tokens"], numbers["rejected_response_tokens"]
    longer = float(np.mean(chosen > rejected)) if len(chosen) else 0.0
    shorter = float(np.mean(chosen < rejected)) if len(chosen) else 0.0
    detail = (f"chosen answers average {chosen.mean():.1f} tokens, rejected {rejected.mean():.1f}; chosen is the "
              f"longer in {longer:.0%} of pairs, the shorter in {shorter:.0%}") if len(chosen) else "no pairs"
    biased = max(longer, shorter) > LENGTH_BIAS
    checks.append(Check("length_bias", "warning" if biased else "ok", detail + (
        ": a preference model can learn length instead of quality (SimPO normalises by length)" if biased else "")))
    return checks


def _found(name: str, rows: np.ndarray, what: str, sources: Sources) -> Check:
    if len(rows) == 0:
        return Check(name, "ok", f"no {what.split(':')[0]}")
    return Check(name, "warning", f"{len(rows)} {what}", len(rows), sources(rows[:5]))


def _prompt(row: dict, columns: dict[str, str]) -> list[dict]:
    value = row.get(columns["prompt"])
    if isinstance(value, list):
        turns = _turns(value, columns["prompt"])
        if turns[-1]["role"] != "user":
            raise RowProblem(f"the prompt's last message is the {turns[-1]['role']}'s: it must be the user's")
        return turns
    return [{"role": "user", "content": _text(row, columns, "prompt")}]


def _answer(row: dict, columns: dict[str, str], name: str) -> str:
    value = row.get(columns[name])
    if isinstance(value, list):
        turns = _turns(value, columns[name])
        if len(turns) != 1 or turns[0]["role"] != "assistant":
            raise RowProblem(f"field '{name}' must hold one assistant message, got roles {[t['role'] for t in turns]}")
        return turns[0]["content"]
    return _text(row, columns, name)


def _split_conversations(row: dict, columns: dict[str, str]) -> tuple[list[dict], str, str]:
    chosen, rejected = (_messages(row, columns[name]) for name in IMPLICIT)  # each ends with the assistant
    if chosen[:-1] != rejected[:-1]:
        raise RowProblem("'chosen' and 'rejected' must share every turn but the last (the prompt)")
    return chosen[:-1], chosen[-1]["content"], rejected[-1]["content"]


def _turns(value: list[Any], column: str) -> list[dict]:
    """Messages without the alternation rule (a prompt ends with the user, an answer is one turn)."""
    if not value:
        raise RowProblem(f"field '{column}' is an empty list")
    return [_message(turn, number) for number, turn in enumerate(value, 1)]
