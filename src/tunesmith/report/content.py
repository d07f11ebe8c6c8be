"""What the report says, as plain values both templates (Markdown and HTML) render."""

from __future__ import annotations

import math

from tunesmith.evaluate.analysis import Difference, count_changes, differences, wins_and_regressions
from tunesmith.evaluate.tags import TAGS
from tunesmith.report.charts import LABELS
from tunesmith.report.collect import ReportData
from tunesmith.report.knowledge import KNOWLEDGE_METRICS

MODELS = ("base", "few_shot", "tuned")
METRICS = {  # name -> (label, decimals, higher is better, per-example: has a bootstrap interval)
    "exact_match": ("exact match", 3, True, True),
    "normalized_exact_match": ("normalised exact match", 3, True, True),
    "token_f1": ("token F1", 3, True, True),
    "rouge_l": ("ROUGE-L", 3, True, True),
    "semantic_similarity": ("semantic similarity", 3, True, True),
    "bleu": ("BLEU (sentence mean)", 1, True, True),
    "corpus_bleu": ("BLEU (corpus)", 1, True, False),
    "perplexity": ("perplexity of the reference", 2, False, True),
    "extract_failed": ("extraction failed (share)", 3, False, True),
    "choice_accuracy": ("multiple choice accuracy (acc)", 3, True, False),
    "choice_accuracy_norm": ("multiple choice accuracy, length-normalised (acc_norm)", 3, True, False),
    **KNOWLEDGE_METRICS,
    "preference_accuracy": ("preference accuracy (log p chosen > rejected)", 3, True, False),
    "preference_margin": ("preference margin (log p chosen - rejected)", 2, True, False),
    "preference_reward_accuracy": ("reward accuracy (margin grew from base)", 3, True, False),
}
TEXT_LIMIT = 400


def fmt(value, decimals: int = 3, sign: bool = False) -> str:
    if not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if abs(value) >= 1e6:  # a perplexity of a model that is sure of something else: magnitude is enough
        return f"{value:+.3g}" if sign else f"{value:.3g}"
    return f"{value:+.{decimals}f}" if sign else f"{value:.{decimals}f}"


def models_in(data: ReportData) -> list[str]:
    return [m for m in MODELS if m in data.metrics] + [m for m in data.metrics if m not in MODELS]


def metric_rows(data: ReportData, diffs: dict[str, dict[str, Difference]]) -> list[dict]:
    """One row per metric present: the value per model, and tuned's difference from each baseline."""
    rows = []
    for name in dict.fromkeys([*data.lead, *METRICS]):
        if name not in METRICS or not any(isinstance(m.get(name), int | float) for m in data.metrics.values()):
            continue
        label, decimals, higher, _ = METRICS[name]
        row = {"metric": name, "label": label, "lead": name in data.lead, "higher_is_better": higher}
        row["values"] = {m: fmt(data.metrics[m].get(name), decimals) for m in models_in(data)}
        for baseline in ("base", "few_shot"):
            row[f"vs_{baseline}"] = _difference_cell(data, diffs.get(baseline, {}).get(name), name, baseline, decimals)
        rows.append(row)
    return rows


def _difference_cell(data: ReportData, diff: Difference | None, name: str, baseline: str, decimals: int) -> dict:
    """{"text", "interval", "tone"}: tone is good / bad / neutral (interval includes zero)."""
    tuned, base = (data.metrics.get("tuned") or {}).get(name), (data.metrics.get(baseline) or {}).get(name)
    if diff is None:
        if not isinstance(tuned, int | float) or not isinstance(base, int | float):
            return {"text": "", "interval": "", "tone": "neutral"}
        return {"text": fmt(tuned - base, decimals, sign=True), "interval": "", "tone": "neutral"}
    interval = f"[{fmt(diff.low, decimals, True)}, {fmt(diff.high, decimals, True)}]"
    better = (diff.value > 0) == METRICS[name][2]
    tone = ("good" if better else "bad") if diff.significant else "neutral"
    return {"text": fmt(diff.value, decimals, sign=True), "interval": interval, "tone": tone}


def all_differences(data: ReportData) -> dict[str, dict[str, Difference]]:
    """baseline -> metric -> tuned minus baseline, for the per-example metrics."""
    per_example = [name for name, spec in METRICS.items() if spec[3]]
    out = {}
    for baseline in ("base", "few_shot"):
        if baseline in data.metrics and "tuned" in data.metrics:
            out[baseline] = {d.metric: d for d in differences(data.rows, baseline, "tuned", per_example)}
    return out


BASELINES = (("base", "the base model zero-shot"), ("few_shot", "few-shot prompting"))


def verdict(data: ReportData, diffs: dict[str, dict[str, Difference]]) -> str:
    """Did fine-tuning help? The task's first lead metric in full, then the other lead metrics
    where the difference is clear (its interval excludes zero)."""
    leads = [m for m in data.lead if m in diffs.get("base", {})]
    if not leads:
        return "The fine-tuned model and the base model were not both evaluated: no comparison to draw."
    name = leads[0]
    label, decimals, _, _ = METRICS[name]
    parts = []
    for baseline, words in BASELINES:
        diff = diffs.get(baseline, {}).get(name)
        if diff is not None:
            before, after = data.metrics[baseline].get(name), data.metrics["tuned"].get(name)
            parts.append(f"{_outcome(diff)} {words} ({fmt(before, decimals)} → {fmt(after, decimals)}, "
                         f"{fmt(diff.value, decimals, True)}, 95% CI {fmt(diff.low, decimals, True)} to "
                         f"{fmt(diff.high, decimals, True)})")  # fmt: skip
    text = f"On {label}, the fine-tuned model is " + "; and ".join(parts) + "."
    others = []
    for other in leads[1:]:
        clear = [(words, diffs[b][other]) for b, words in BASELINES if other in diffs.get(b, {})]
        decimals = METRICS[other][1]
        said = [f"{_outcome(d)} {words} ({fmt(d.value, decimals, True)})" for words, d in clear if d.significant]
        if said:
            others.append(f"{METRICS[other][0]}: " + ", ".join(said))
    return text + (" Other lead metrics: " + "; ".join(others) + "." if others else "")


def _outcome(diff: Difference) -> str:
    if not diff.significant:
        return "no clear difference from"
    return "better than" if (diff.value > 0) == METRICS[diff.metric][2] else "worse than"


def example_rows(data: ReportData, top: int = 10) -> tuple[list[dict], list[dict]]:
    """The largest wins and regressions of tuned over base, with every model's answer side by side."""
    wins, regressions = wins_and_regressions(data.rows, data.task_type, top=top)
    return [_example(delta, row) for delta, row in wins], [_example(delta, row) for delta, row in regressions]


def _example(delta: float, row: dict) -> dict:
    present = [m for m in MODELS if row.get(m)]
    answers = {m: short(row[m].get("prediction")) for m in present}
    tags = {m: ", ".join(t.replace("_", " ") for t in row[m].get("tags") or []) for m in present}
    question = row.get("question") or row.get("prompt") or ""
    return {"delta": fmt(delta, 2, True), "source": row.get("source") or "", "question": short(question),
            "reference": short(row.get("reference")), "answers": answers, "tags": tags}  # fmt: skip


def short(text, limit: int = TEXT_LIMIT) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tag_rows(data: ReportData) -> list[dict]:
    """Per tag, failed generations per model (only tags that occurred)."""
    counts = {m: data.metrics[m].get("tags") or {} for m in models_in(data)}
    names = dict.fromkeys([*TAGS, *(t for c in counts.values() for t in c)])
    return [{"tag": t, "counts": {m: c.get(t, 0) for m, c in counts.items()}} for t in names
            if any(c.get(t) for c in counts.values())]  # fmt: skip


def changes(data: ReportData) -> dict[str, int] | None:
    if "base" not in data.metrics or "tuned" not in data.metrics or not data.rows:
        return None
    return count_changes(data.rows, data.task_type)


def model_label(name: str) -> str:
    return LABELS.get(name, name)
