"""ROUGE-L via the reference `rouge-score` implementation."""

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _scorer() -> Any:
    # Imported lazily: rouge_score pulls in nltk, which is slow to import and not
    # needed by callers that only use the cheap metrics.
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(pred: str, ref: str) -> float:
    """ROUGE-L F-measure (0-1) from the longest common subsequence of tokens.

    Uses rouge-score's tokenizer (lowercase, alphanumeric tokens only) with the
    Porter stemmer. If either side has no tokens the score is 0.0.
    """
    return _scorer().score(target=ref, prediction=pred)["rougeL"].fmeasure
