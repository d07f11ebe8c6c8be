"""Per-example text metrics and their aggregation.

Torch-based metrics live in `perplexity` and `similarity` and are imported from there,
so importing this package stays cheap.
"""

from tunesmith.evaluate.metrics.bleu import sentence_bleu
from tunesmith.evaluate.metrics.exact import exact_match, normalized_exact_match
from tunesmith.evaluate.metrics.extract import extract_answer
from tunesmith.evaluate.metrics.f1 import token_f1
from tunesmith.evaluate.metrics.rouge import rouge_l

TEXT_METRICS = {
    "exact_match": exact_match,
    "normalized_exact_match": normalized_exact_match,
    "token_f1": token_f1,
    "rouge_l": rouge_l,
    "bleu": sentence_bleu,  # 0-100 scale, unlike the others
}


def score_example(pred: str, ref: str, extract: str | None = None) -> dict[str, float]:
    """All text metrics for one prediction/reference pair.

    With `extract`, the regex is applied to both sides first (see `extract_answer`). A
    reference with no match is used whole, since many datasets store the bare answer.
    A prediction with no match scores 0 on every metric. The `extract_failed` key (1.0
    or 0.0) is then always present, so its mean is the failure rate.

    Raises:
        TunesmithError: If `extract` is not a valid regular expression.
    """
    scores: dict[str, float] = {}
    if extract is not None:
        extracted = extract_answer(pred, extract)
        ref_answer = extract_answer(ref, extract)
        ref = ref.strip() if ref_answer is None else ref_answer
        scores["extract_failed"] = float(extracted is None)
        if extracted is None:
            return {name: 0.0 for name in TEXT_METRICS} | scores
        pred = extracted
    return {name: fn(pred, ref) for name, fn in TEXT_METRICS.items()} | scores


def aggregate(scores: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over the examples that report it, plus `n` (the example count)."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for example in scores:
        for name, value in example.items():
            totals[name] = totals.get(name, 0.0) + value
            counts[name] = counts.get(name, 0) + 1
    means: dict[str, float] = {name: totals[name] / counts[name] for name in totals}
    means["n"] = len(scores)
    return means
