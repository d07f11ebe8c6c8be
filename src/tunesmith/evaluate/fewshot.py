"""The prompt-engineering baseline: k training examples, most similar to the question, as earlier turns.

Similarity is TF-IDF cosine over the questions' word tokens (an inverted index, so choosing
shots for every test question is fast even with a large training split). A training example
whose question is identical to the test question is never used as its shot: that would hand
the base model the answer.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict

from tunesmith.evaluate.examples import EvalExample
from tunesmith.evaluate.metrics.normalize import tokens


class ShotIndex:
    """TF-IDF index of training examples' questions."""

    def __init__(self, pool: list[EvalExample]) -> None:
        self.pool = pool
        self.keys = [" ".join(tokens(example.question)) for example in pool]
        counts = [Counter(key.split()) for key in self.keys]
        document_frequency = Counter(term for count in counts for term in count)
        self.idf = {term: math.log((1 + len(pool)) / (1 + df)) + 1 for term, df in document_frequency.items()}
        self.postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for doc, count in enumerate(counts):
            weights = {term: tf * self.idf[term] for term, tf in count.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for term, weight in weights.items():
                self.postings[term].append((doc, weight / norm))

    def nearest(self, question: str, k: int) -> list[EvalExample]:
        """The k most similar training examples, most similar first (ties: earlier in the split)."""
        key = " ".join(tokens(question))
        query = {term: tf * self.idf[term] for term, tf in Counter(key.split()).items() if term in self.idf}
        norm = math.sqrt(sum(w * w for w in query.values())) or 1.0
        scores: dict[int, float] = defaultdict(float)
        for term, weight in query.items():
            for doc, doc_weight in self.postings[term]:
                scores[doc] += weight / norm * doc_weight
        best = [doc for _, doc in heapq.nsmallest(k, ((-s, doc) for doc, s in scores.items() if self.keys[doc] != key))]
        for doc in range(len(self.pool)):  # no word in common with enough examples: fill in split order
            if len(best) >= k:
                break
            if doc not in best and self.keys[doc] != key:
                best.append(doc)
        return [self.pool[doc] for doc in best]


def few_shot_messages(example: EvalExample, shots: list[EvalExample]) -> tuple[list[dict], str]:
    """(messages, input_text) of `example` with `shots` as earlier user/assistant turns.

    The most similar shot goes last, nearest the question. Each shot contributes its last
    question and answer; alpaca inputs are folded into the user turns (the template applies one
    input to every turn, so it cannot hold a different input per shot).
    """
    system = [m for m in example.messages[:1] if m["role"] == "system"]
    turns: list[dict] = []
    for shot in reversed(shots):
        turns.append({"role": "user", "content": _with_input(shot.messages[-1]["content"], shot.input_text)})
        turns.append({"role": "assistant", "content": shot.reference})
    rest = example.messages[len(system) :]
    if example.input_text:
        rest = [*rest[:-1], {"role": "user", "content": _with_input(rest[-1]["content"], example.input_text)}]
    return [*system, *turns, *rest], ""


def _with_input(content: str, input_text: str) -> str:
    return f"{content}\n\n{input_text}" if input_text else content
