"""What the report says about knowledge vs behaviour, and what fine-tuning cost in general knowledge."""

from __future__ import annotations

from tunesmith.evaluate.analysis import Difference
from tunesmith.evaluate.forgetting import accuracy_change, result_file
from tunesmith.evaluate.outputs import read_jsonl
from tunesmith.report.collect import ReportData

KNOWLEDGE_METRICS = {  # name -> (label, decimals, higher is better, per-example: has a bootstrap interval)
    "fact_recall": ("fact recall (reference facts stated)", 3, True, True),
    "contradicts": ("answers contradicting the reference (share)", 3, False, True),
    "format": ("format adherence (house style)", 3, True, True),
    "stops": ("stops by itself (share)", 3, True, True),
    "on_topic": ("on topic (share)", 3, True, True),
    "judge_score": ("judge score (correct 1, partly 0.5, wrong 0)", 3, True, True),
    "general_accuracy": ("general knowledge accuracy", 3, True, False),
    "general_accuracy_norm": ("general knowledge accuracy (length-normalised)", 3, True, False),
}


def _signed(label: str, diff: Difference) -> str:
    return f"{label} {diff.value:+.2f}, 95% CI {diff.low:+.2f} to {diff.high:+.2f}"


def knowledge_verdict(data: ReportData, diffs: dict[str, dict[str, Difference]]) -> str:
    """Which moved, behaviour (house style) or knowledge (facts), tuned vs base, with intervals, and how
    many answers contradict the reference for each model."""
    against = diffs.get("base", {})
    if "tuned" not in data.metrics or "base" not in data.metrics or "format" not in against:
        return ""
    style, facts = against["format"], against.get("fact_recall")
    parts = [f"tuned answers {_style_words(style)} ({_signed('format', style)})"]
    if facts is not None:
        parts.append(f"{_fact_words(facts)} ({_signed('fact recall', facts)})")
    counts = {m: data.metrics[m].get("contradictions") for m in ("tuned", "base")}
    text = " and ".join(parts)
    if all(isinstance(c, int) for c in counts.values()):
        plural = "" if counts["tuned"] == 1 else "s"
        text += f", with {counts['tuned']} answer{plural} contradicting the reference vs {counts['base']} for base"
    return text[0].upper() + text[1:] + "."


def _style_words(diff: Difference) -> str:
    if not diff.significant:
        return "are no clearer in the house style than the base model's"
    return "match the house style better" if diff.value > 0 else "match the house style worse"


def _fact_words(diff: Difference) -> str:
    if not diff.significant:
        return "recall no more of the reference's facts"
    return "recall more facts" if diff.value > 0 else "recall fewer facts"


def forgetting_line(data: ReportData) -> str:
    """'general knowledge: base X% → tuned Y% (change, CI)', from eval/general_<model>.jsonl."""
    base, tuned = (data.metrics.get(m) or {} for m in ("base", "tuned"))
    if base.get("general_accuracy") is None or tuned.get("general_accuracy") is None:
        return ""
    paths = [result_file(data.run.eval, m) for m in ("base", "tuned")]
    rows = [read_jsonl(p) if p.is_file() else [] for p in paths]
    parts = []
    for norm, key, label in ((False, "general_accuracy", "accuracy"), (True, "general_accuracy_norm", "acc_norm")):
        diff = accuracy_change(*rows, norm=norm) if all(rows) else None
        interval = (f", {100 * diff.value:+.1f} points, 95% CI {100 * diff.low:+.1f} to {100 * diff.high:+.1f}"
                    if diff else "")  # fmt: skip
        parts.append(f"{label} base {100 * base[key]:.1f}% → tuned {100 * tuned[key]:.1f}% ({_clear(diff)}{interval})")
    n = tuned.get("general_n") or len(rows[1])
    return f"General knowledge ({n} ARC-Easy questions, log-likelihood): " + "; ".join(parts) + "."


def _clear(diff: Difference | None) -> str:
    if diff is None:
        return "not paired"
    if not diff.significant:
        return "no clear change"
    return "forgot" if diff.value < 0 else "improved"


def judge_line(data: ReportData) -> str:
    """Who judged, what each model got, and the order-balanced head-to-head."""
    identity = data.info.get("judge") or {}
    if not identity:
        return ""
    parts = []
    for model in ("base", "few_shot", "tuned"):
        counts = (data.metrics.get(model) or {}).get("judge")
        if isinstance(counts, dict):
            parts.append(f"{model.replace('_', '-')}: {counts.get('correct', 0)} correct, {counts.get('partly', 0)} "
                         f"partly, {counts.get('wrong', 0)} wrong, {counts.get('unparsed', 0)} unparseable")
    pair = ((data.metrics.get("tuned") or {}).get("judge") or {}).get("pairwise")
    if isinstance(pair, dict):
        parts.append(f"tuned vs base, asked in both orders: tuned preferred {pair['tuned']}, base {pair['base']}, "
                     f"ties or order-dependent {pair['tie']}, unparseable {pair['unparsed']}")
    return f"Judge `{identity.get('model')}` at {identity.get('base_url')}: " + "; ".join(parts) + "."
