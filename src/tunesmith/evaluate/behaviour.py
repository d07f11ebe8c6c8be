"""Behaviour: does an answer have the references' shape, stop properly and stay on topic?

The house style is learnt from the references themselves:

- length: words in the answer vs its reference; scored min(ratio, 1/ratio) (1 = the same length)
- shape: list (2+ lines starting with "-", "*", "•" or "1.") or prose, as the reference is
- prefix / suffix: the opening and closing words most references share (e.g. "Sprout Support:"), when
  at least CONVENTION_SHARE of them do; an answer follows it or not

`format` is the mean of the components that apply. `stops` is 1 when generation ended by itself
(not at eval.max_new_tokens); `on_topic` is 1 when at least ON_TOPIC_SHARE of the answer's content
words come from the question or the reference.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from tunesmith.evaluate.stopwords import STOPWORDS

CONVENTION_SHARE = 0.6
CONVENTION_WORDS = 4  # longest prefix / suffix looked for, in words
ON_TOPIC_SHARE = 0.2
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_WORD = re.compile(r"[a-z0-9][a-z0-9'’-]*")


@dataclass(frozen=True)
class HouseStyle:
    prefix: str  # "" when the references share none
    suffix: str

    @classmethod
    def learn(cls, references: list[str]) -> HouseStyle:
        return cls(_shared(references, first=True), _shared(references, first=False))


def _shared(references: list[str], *, first: bool) -> str:
    """The longest run of opening (or closing) words that CONVENTION_SHARE of the references share."""
    if len(references) < 3:
        return ""
    best = ""
    for size in range(1, CONVENTION_WORDS + 1):
        runs = Counter(_edge(ref, size, first) for ref in references if len(ref.split()) > size)
        if not runs:
            break
        run, count = runs.most_common(1)[0]
        if count / len(references) < CONVENTION_SHARE:
            break
        best = run
    return best


def _edge(text: str, size: int, first: bool) -> str:
    words = text.split()
    return " ".join(words[:size] if first else words[-size:])


def is_list(text: str) -> bool:
    return sum(1 for line in text.splitlines() if _BULLET.match(line)) >= 2


def behaviour_scores(prediction: str, reference: str, question: str, style: HouseStyle, stopped: str | None) -> dict:
    """Per-answer behaviour scores (0-1); `stopped` None (unknown) leaves `stops` out."""
    predicted, wanted = len(prediction.split()), len(reference.split())
    ratio = predicted / wanted if wanted else (1.0 if not predicted else float(predicted))
    parts = {"length": min(ratio, 1 / ratio) if ratio > 0 else 0.0,
             "shape": float(is_list(prediction) == is_list(reference))}
    if style.prefix:
        parts["prefix"] = float(prediction.strip().startswith(style.prefix))
    if style.suffix:
        parts["suffix"] = float(prediction.strip().endswith(style.suffix))
    scores = {"format": sum(parts.values()) / len(parts), "length_ratio": ratio,
              "on_topic": _on_topic(prediction, question, reference)}
    scores |= {f"format_{name}": value for name, value in parts.items()}
    if stopped is not None:
        scores["stops"] = float(stopped != "length")
    return scores


def _on_topic(prediction: str, question: str, reference: str) -> float:
    said = _content(prediction)
    if not said:
        return 0.0
    context = {w.rstrip("s") for w in _content(question) | _content(reference)}
    return float(sum(w.rstrip("s") in context for w in said) / len(said) >= ON_TOPIC_SHARE)


def _content(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 2}
