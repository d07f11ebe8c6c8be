"""Error analysis: what went wrong with each failed generation.

A generation *failed* when it does not match the reference after normalisation and, for an
expansion task, also has ROUGE-L below `FAIL_ROUGE_L`. Each failure gets every tag that applies:

- `no_stop`: never stopped (no EOS, hit eval.max_new_tokens)
- `repetition`: stuck in a loop (a phrase repeated back to back, or few distinct trigrams)
- `empty`: nothing but whitespace
- `wrong_format`: eval.extract is set and its regex found nothing in the answer
- `off_topic`: almost no word overlap with the reference (off-topic or hallucinated)
- `contradicts_reference`: states a fact of the same kind as the reference's but another value ("nine
  countries" for "seven countries"); added by `tunesmith.evaluate.knowledge`, even to an answer whose
  overlap would pass, since resemblance does not make a wrong fact right
- `wrong_answer`: none of the above: a fluent, on-topic answer that is still wrong
"""

from __future__ import annotations

import re

CONTRADICTS = "contradicts_reference"
TAGS = ("no_stop", "repetition", "empty", "wrong_format", "off_topic", CONTRADICTS, "wrong_answer")
FAIL_ROUGE_L = 0.5
OFF_TOPIC_F1 = 0.1
_LOOP = re.compile(r"(.{1,40}?)\1{3,}", re.DOTALL)  # a phrase followed by 3+ copies of itself


def failed(scores: dict[str, float], task_type: str) -> bool:
    if scores.get("normalized_exact_match", 0.0) >= 1.0:
        return False
    return task_type == "extraction" or scores.get("rouge_l", 0.0) < FAIL_ROUGE_L


def tag_failure(prediction: str, stopped: str, scores: dict[str, float], extract: str | None) -> list[str]:
    """Every tag that applies to one failed generation (at least one)."""
    tags = []
    if stopped == "length":
        tags.append("no_stop")
    if is_repetitive(prediction):
        tags.append("repetition")
    if not prediction.strip():
        tags.append("empty")
    unextracted = bool(extract and scores.get("extract_failed"))
    if unextracted:
        tags.append("wrong_format")  # its scores are all 0 by definition: overlap says nothing more
    overlap = max(scores.get("token_f1", 0.0), scores.get("rouge_l", 0.0))
    if prediction.strip() and not unextracted and overlap < OFF_TOPIC_F1:
        tags.append("off_topic")
    return tags or ["wrong_answer"]


def is_repetitive(text: str) -> bool:
    """A repetition loop: a phrase repeated 4+ times back to back over a third of the text,
    or (for 12+ words) fewer than half of the word trigrams distinct."""
    text = text.strip()
    if not text:
        return False
    loop = max((len(m.group(0)) for m in _LOOP.finditer(text)), default=0)
    if loop >= 12 and loop >= len(text) / 3:
        return True
    words = text.lower().split()
    if len(words) < 12:
        return False
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    return len(set(trigrams)) < len(trigrams) / 2


def count_tags(records: list[dict]) -> dict[str, int]:
    """{tag: count} over the records' `tags` lists, every known tag present."""
    counts = dict.fromkeys(TAGS, 0)
    for record in records:
        for tag in record.get("tags", []):
            counts[tag] = counts.get(tag, 0) + 1
    return counts
