"""Test examples for evaluation, read from the prepared split, and the task type they imply."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from itertools import zip_longest
from typing import Literal

from tunesmith.data.templates import Template
from tunesmith.errors import TunesmithError

TaskType = Literal["extraction", "expansion"]
LEAD_METRICS: dict[str, list[str]] = {
    "extraction": ["exact_match", "normalized_exact_match", "token_f1"],
    "expansion": ["rouge_l", "semantic_similarity", "perplexity"],
}


@dataclass(frozen=True)
class EvalExample:
    index: int  # position in the test split
    source: str  # file:line of the original row
    messages: list[dict]  # the conversation up to (not including) the reference answer
    input_text: str  # alpaca's input, "" otherwise
    reference: str  # the last assistant message

    @property
    def question(self) -> str:
        """The text the answer responds to: the last user message (and alpaca input)."""
        return f"{self.messages[-1]['content']}\n{self.input_text}".strip()


@dataclass(frozen=True)
class Task:
    type: TaskType
    reason: str  # one sentence a user can check

    @property
    def lead(self) -> list[str]:
        return LEAD_METRICS[self.type]


def examples_from_rows(rows, limit: int | None = None) -> list[EvalExample]:
    """Conversations that end in an answer, from prepared rows (`example`, `source` columns).

    Raises:
        TunesmithError: If no row has a question and a reference answer (e.g. plain text data).
    """
    examples: list[EvalExample] = []
    for index, example, source in _canonical_rows(rows):
        if limit is not None and len(examples) >= limit:
            break
        messages = example.get("messages") or []
        if len(messages) < 2 or messages[-1].get("role") != "assistant":
            continue
        examples.append(EvalExample(index, source, messages[:-1], example.get("input", ""), messages[-1]["content"]))
    if not examples:
        raise TunesmithError(
            "eval: the test split has no question/answer examples to generate answers for "
            "(plain-text data has no reference answer); use question/answer, alpaca, prompt/completion "
            "or messages data, or look at the eval loss in train_log.jsonl instead"
        )
    return examples


def _canonical_rows(rows):
    """(row index, canonical row, source) of each example; a packed row holds several (a JSON array,
    sources joined by ";")."""
    for index, row in enumerate(rows):
        parsed = json.loads(row["example"]) if row.get("example") else {}
        if isinstance(parsed, list):
            for example, source in zip_longest(parsed, row.get("source", "").split(";"), fillvalue=""):
                yield index, example, source
        else:
            yield index, parsed, row.get("source", "")


def answer_ids(tokenizer, template: Template, example: EvalExample) -> list[int]:
    """Token ids of the reference answer exactly as training saw them (with its end marker)."""
    full = [*example.messages, {"role": "assistant", "content": example.reference}]
    text, trained = template.segments(full, example.input_text)[-1]
    return tokenizer(text, add_special_tokens=False).input_ids if trained else []


def detect_task(examples: list[EvalExample], setting: str = "auto", extract: str | None = None) -> Task:
    """Extraction (short answers pulled from the question) or expansion (answers longer than a phrase).

    `setting` is eval.task_type; 'auto' decides from the data and says why.
    """
    if setting in ("extraction", "expansion"):
        return Task(setting, f"set by eval.task_type: {setting}")
    if extract:
        return Task("extraction", "eval.extract is set: answers are extracted before matching")
    reference = statistics.median(len(e.reference.split()) for e in examples)
    prompt = statistics.median(len(e.question.split()) for e in examples)
    lengths = f"median reference {reference:g} words vs prompt {prompt:g} words"
    if reference <= 5 or reference < 0.25 * prompt:
        return Task("extraction", f"short answers ({lengths}): exact match and F1 lead")
    return Task("expansion", f"long answers ({lengths}): ROUGE-L, semantic similarity and perplexity lead")
