"""The report's charts, drawn with matplotlib (Agg, no display) into PNG bytes.

Each function returns None when there is nothing to draw, so the report says so instead.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tunesmith.evaluate.tags import TAGS  # noqa: E402

COLORS = {"base": "#9aa0a6", "few_shot": "#4c8bf5", "tuned": "#e8710a"}
LABELS = {"base": "base (zero-shot)", "few_shot": "base (few-shot)", "tuned": "fine-tuned"}
SCORE_METRICS = {  # metrics on a 0-1 scale, drawn together
    "exact_match": "EM",
    "normalized_exact_match": "norm EM",
    "token_f1": "F1",
    "rouge_l": "ROUGE-L",
    "semantic_similarity": "similarity",
}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def metrics_chart(metrics: dict, lead: list[str]) -> bytes | None:
    """Grouped bars of the 0-1 scores per model, the task's lead metrics first."""
    names = [m for m in dict.fromkeys([*lead, *SCORE_METRICS]) if m in SCORE_METRICS]
    names = [m for m in names if any(isinstance(v.get(m), int | float) for v in metrics.values())]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    width = 0.8 / max(1, len(metrics))
    for k, (model, values) in enumerate(metrics.items()):
        xs = [i + (k - (len(metrics) - 1) / 2) * width for i in range(len(names))]
        heights = [values.get(m) or 0.0 for m in names]
        bars = ax.bar(xs, heights, width, label=LABELS.get(model, model), color=COLORS.get(model))
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(range(len(names)), [SCORE_METRICS[m] for m in names])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("score (0-1)")
    ax.legend(fontsize=8, frameon=False, ncols=3, loc="upper center", bbox_to_anchor=(0.5, 1.18))
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


GENERATION_KEYS = {"eval_rouge_l": "ROUGE-L of answers", "eval_token_f1": "F1 of answers"}  # train.eval_generate


def loss_chart(train_log: list[dict]) -> bytes | None:
    """Training loss per step, eval loss where it was measured, and (right axis) the task metric of
    answers generated during training (train.eval_generate)."""
    train = [(r["step"], r["loss"]) for r in train_log if _number(r.get("step")) and _number(r.get("loss"))]
    evals = [(r["step"], r["eval_loss"]) for r in train_log if _number(r.get("step")) and _number(r.get("eval_loss"))]
    if not train and not evals:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    if train:
        ax.plot(*zip(*train, strict=True), color=COLORS["tuned"], label="train loss", linewidth=1.5)
    if evals:
        ax.plot(*zip(*evals, strict=True), color=COLORS["few_shot"], marker="o", label="eval loss", linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    for key, label in GENERATION_KEYS.items():
        points = [(r["step"], r[key]) for r in train_log if _number(r.get("step")) and _number(r.get(key))]
        if points:
            right = ax.twinx()
            right.plot(*zip(*points, strict=True), color=COLORS["base"], marker="s", linestyle="--", label=label)
            right.set_ylabel(label)
            right.set_ylim(0, 1)
            more = right.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=8, frameon=False)
    ax.spines[["top"]].set_visible(False)
    return _png(fig)


def length_chart(lengths: dict[str, list[int]], max_length: int | None) -> bytes | None:
    """Histogram of tokens per example (prompt + answer) in each split, with the truncation limit."""
    splits = {split: values for split, values in lengths.items() if values}
    if not splits:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    top = max(max(values) for values in splits.values())
    width = max(1, -(-(top + 1) // 40))  # whole tokens per bin, at most ~40 bins
    edges = list(range(0, top + width + 1, width))
    for split, values in splits.items():
        color = COLORS["tuned"] if split == "train" else COLORS["few_shot"]
        ax.hist(values, bins=edges, alpha=0.6, color=color, label=f"{split} ({len(values):,})")
    if max_length:
        ax.axvline(max_length, color="#d93025", linestyle="--", linewidth=1, label=f"max_length {max_length}")
    ax.set_xlabel("tokens per example")
    ax.set_ylabel("examples")
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def tags_chart(metrics: dict) -> bytes | None:
    """Failed generations per error tag, one bar per model."""
    tagged = {model: values.get("tags") or {} for model, values in metrics.items()}
    known = dict.fromkeys([*TAGS, *(tag for counts in tagged.values() for tag in counts)])
    tags = [tag for tag in known if any(counts.get(tag) for counts in tagged.values())]
    if not tags:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.25 * len(tags) * max(1, len(tagged))))
    height = 0.8 / max(1, len(tagged))
    for k, (model, counts) in enumerate(tagged.items()):
        ys = [i + (k - (len(tagged) - 1) / 2) * height for i in range(len(tags))]
        widths = [counts.get(t, 0) for t in tags]
        bars = ax.barh(ys, widths, height, color=COLORS.get(model), label=LABELS.get(model, model))
        ax.bar_label(bars, fontsize=7, padding=2)
    ax.set_yticks(range(len(tags)), [t.replace("_", " ") for t in tags])
    ax.invert_yaxis()
    ax.set_xlabel("failed generations")
    ax.margins(x=0.08)
    ax.legend(fontsize=8, frameon=False, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
