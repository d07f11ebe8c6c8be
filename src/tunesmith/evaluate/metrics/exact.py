"""Exact-match metrics."""

from tunesmith.evaluate.metrics.normalize import normalize_answer


def exact_match(pred: str, ref: str) -> float:
    """1.0 if the strings are equal after stripping surrounding whitespace, else 0.0."""
    return float(pred.strip() == ref.strip())


def normalized_exact_match(pred: str, ref: str) -> float:
    """1.0 if the strings are equal after SQuAD normalisation, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(ref))
