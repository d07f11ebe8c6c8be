"""SQuAD token-level F1."""

from collections import Counter

from tunesmith.evaluate.metrics.normalize import tokens


def token_f1(pred: str, ref: str) -> float:
    """Harmonic mean of token precision and recall over normalised tokens.

    Tokens are counted as a multiset, as in the SQuAD script. Both sides empty
    (after normalisation) scores 1.0; exactly one side empty scores 0.0.
    """
    pred_tokens, ref_tokens = tokens(pred), tokens(ref)
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    overlap = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)
