"""The comparison table that `run`, `quickstart`, `eval` and `compare` print."""

from __future__ import annotations

from tunesmith.evaluate.examples import LEAD_METRICS

COLUMNS = {  # metric -> (header, format)
    "exact_match": ("EM", "{:.3f}"),
    "normalized_exact_match": ("norm EM", "{:.3f}"),
    "token_f1": ("F1", "{:.3f}"),
    "rouge_l": ("ROUGE-L", "{:.3f}"),
    "semantic_similarity": ("similarity", "{:.3f}"),
    "bleu": ("BLEU", "{:.1f}"),
    "perplexity": ("ppl", "{:.2f}"),
    "fact_recall": ("fact recall", "{:.3f}"),
    "contradictions": ("contradicts", "{:d}"),
    "format": ("format", "{:.3f}"),
    "choice_accuracy": ("MC acc", "{:.3f}"),
    "choice_accuracy_norm": ("MC acc_norm", "{:.3f}"),
    "general_accuracy": ("GK acc", "{:.3f}"),
    "general_accuracy_norm": ("GK acc_norm", "{:.3f}"),
    "preference_accuracy": ("pref acc", "{:.3f}"),
    "n": ("n", "{:d}"),
}
ROW_NAMES = {"base": "base (zero-shot)", "few_shot": "base (few-shot)", "tuned": "fine-tuned"}


def format_table(metrics: dict) -> str:
    """A plain-text table, one row per model, the metrics that fit the task type first.

    Accepts metrics.json's shape ({model: {metric: value}}) or a single model's flat dict.
    """
    if "n" in metrics and not isinstance(metrics.get("n"), dict):
        metrics = {"model": metrics}
    task = next((m.get("task_type") for m in metrics.values() if m.get("task_type")), "extraction")
    order = [*LEAD_METRICS.get(task, []), *COLUMNS]
    columns = [c for c in dict.fromkeys(order) if c in COLUMNS and any(m.get(c) is not None for m in metrics.values())]
    header = ["model", *(COLUMNS[c][0] for c in columns)]
    rows = [[ROW_NAMES.get(name, name), *(_cell(row.get(c), c) for c in columns)] for name, row in metrics.items()]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [_line(header, widths), _line(["-" * w for w in widths], widths)]
    lines += [_line(row, widths) for row in rows]
    return "\n".join(lines)


def _cell(value, column: str) -> str:
    if value is None:
        return "-"
    return COLUMNS[column][1].format(int(value) if column in ("n", "contradictions") else float(value))


def _line(cells: list[str], widths: list[int]) -> str:
    first = cells[0].ljust(widths[0])
    return "  ".join([first, *(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))])
