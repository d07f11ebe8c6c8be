"""BLEU via sacrebleu, on sacrebleu's 0-100 scale (not 0-1 like the other metrics)."""

import sacrebleu


def corpus_bleu(preds: list[str], refs: list[str]) -> float:
    """Corpus-level BLEU with one reference per prediction.

    Returns:
        The sacrebleu score on a 0-100 scale (100 = identical corpora).

    Raises:
        ValueError: If `preds` and `refs` have different lengths.
    """
    if len(preds) != len(refs):
        raise ValueError(f"corpus_bleu got {len(preds)} predictions but {len(refs)} references")
    return sacrebleu.corpus_bleu(preds, [refs]).score


def sentence_bleu(pred: str, ref: str) -> float:
    """Smoothed sentence-level BLEU on a 0-100 scale (100 = identical).

    Sentence BLEU is noisy; prefer `corpus_bleu` when reporting a single number.
    """
    return sacrebleu.sentence_bleu(pred, [ref]).score
