"""Multiple-choice benchmarks scored by log-likelihood, the way ARC, HellaSwag and MMLU are.

Each line of the JSONL file is `{"question": str, "choices": [str, ...], "answer": int}`
(`answer` is the 0-based index of the right choice), or a row in ARC's own shape,
`{"question": str, "choices": {"text": [str, ...], "label": ["A", ...]}, "answerKey": "B"}`.
The question is rendered with the run's template as a user turn; each choice is scored as the
assistant's answer, all on one run of the question's prompt (`shared_context_logprobs`). `accuracy`
picks the choice with the highest summed log-likelihood (lm-evaluation-harness's acc), `accuracy_norm`
the highest per UTF-8 byte of the choice (its acc_norm), which does not favour short choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunesmith.data.templates import Template
from tunesmith.data.tokenize import encode_prompt
from tunesmith.errors import TunesmithError
from tunesmith.evaluate.loglik import shared_context_logprobs
from tunesmith.evaluate.outputs import read_user_jsonl

FIELD_HINT = (
    'each line must look like {"question": "...", "choices": ["...", "..."], "answer": 0} or, as ARC, '
    '{"question": "...", "choices": {"text": ["...", "..."], "label": ["A", "B"]}, "answerKey": "A"}'
)


@dataclass(frozen=True)
class ChoiceRow:
    question: str
    choices: list[str]
    answer: int  # index into choices
    source: str = ""  # file:line


def load_choices(path: str | Path) -> list[ChoiceRow]:
    """Read and validate a multiple-choice JSONL file (eval.choices_path).

    Raises:
        TunesmithError: naming file:line and the problem, for a missing file or a bad row.
    """
    return read_user_jsonl(path, "eval.choices_path", FIELD_HINT, _parse_row)


def _parse_row(raw: dict, where: str) -> ChoiceRow:
    question, choices, answer = raw.get("question"), raw.get("choices"), raw.get("answer")
    if isinstance(choices, dict):
        choices, answer = _arc_choices(choices, raw.get("answerKey"), where)
    if not isinstance(question, str) or not question.strip():
        raise TunesmithError(f"{where}: 'question' must be a non-empty string; {FIELD_HINT}")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
        raise TunesmithError(f"{where}: 'choices' must be a list of at least two non-empty strings; {FIELD_HINT}")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise TunesmithError(
            f"{where}: 'answer' must be the 0-based index of the right choice (0..{len(choices) - 1}), got {answer!r}"
        )
    return ChoiceRow(question, choices, answer, where)


def _arc_choices(choices: dict, key, where: str) -> tuple[list, int]:
    """ARC's {"text": [...], "label": [...]} and answerKey -> (choice texts, 0-based answer index)."""
    texts, labels = choices.get("text"), choices.get("label")
    if not isinstance(texts, list) or not isinstance(labels, list) or len(texts) != len(labels):
        raise TunesmithError(f"{where}: 'choices' must hold 'text' and 'label' lists of the same length; {FIELD_HINT}")
    labels = [str(label) for label in labels]
    if str(key) not in labels:
        raise TunesmithError(f"{where}: 'answerKey' {key!r} is not one of the labels {labels}")
    return texts, labels.index(str(key))


def score_choices(model, tokenizer, template: Template, rows: list[ChoiceRow], *, batch_size: int = 16) -> dict:
    """Accuracy of `model` on the rows, by raw and by length-normalised log-likelihood.

    Returns:
        {"accuracy", "accuracy_norm", "n", "examples": [{"source", "answer", "pred", "pred_norm",
        "logprobs"}...]} where logprobs are the summed log-likelihoods of each choice.
    """
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pairs, owners = [], []
    for k, row in enumerate(rows):
        context = encode_prompt(tokenizer, template, [{"role": "user", "content": row.question}])
        for choice in row.choices:
            pairs.append((context, tokenizer(choice, add_special_tokens=False).input_ids))
            owners.append(k)
    scored = shared_context_logprobs(model, pairs, pad_id=pad_id, batch_size=batch_size)
    logprobs: list[list[float]] = [[] for _ in rows]
    for k, (total, _) in zip(owners, scored, strict=True):
        logprobs[k].append(total)
    examples = [_pick(row, lp) for row, lp in zip(rows, logprobs, strict=True)]
    n = len(examples)
    return {
        "accuracy": sum(e["pred"] == e["answer"] for e in examples) / n if n else 0.0,
        "accuracy_norm": sum(e["pred_norm"] == e["answer"] for e in examples) / n if n else 0.0,
        "n": n,
        "examples": examples,
    }


def _pick(row: ChoiceRow, logprobs: list[float]) -> dict:
    per_byte = [lp / max(1, len(c.encode("utf-8"))) for lp, c in zip(logprobs, row.choices, strict=True)]
    return {
        "source": row.source,
        "answer": row.answer,
        "pred": max(range(len(logprobs)), key=logprobs.__getitem__),
        "pred_norm": max(range(len(per_byte)), key=per_byte.__getitem__),
        "logprobs": logprobs,
    }
