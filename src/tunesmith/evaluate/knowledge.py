"""Knowledge vs behaviour for one model's answers: fact recall and contradictions, format, stops, on topic.

`annotate(records)` adds per-answer scores (into each record's `scores`, so the paired bootstrap
of the report covers them), the facts checked (`knowledge`), and the `contradicts_reference` tag.
`summarize(records)` gives the model's means with 95% bootstrap intervals for metrics.json.
"""

from __future__ import annotations

import numpy as np

from tunesmith.evaluate.analysis import mean_interval
from tunesmith.evaluate.behaviour import HouseStyle, behaviour_scores
from tunesmith.evaluate.facts import FactIndex, check_facts
from tunesmith.evaluate.tags import CONTRADICTS, count_tags

KNOWLEDGE = ("fact_recall", "contradicts")
BEHAVIOUR = ("format", "stops", "on_topic", "length_ratio")


def annotate(records: list[dict], *, index: FactIndex | None = None, style: HouseStyle | None = None) -> None:
    """Score every record in place (`scores`, `knowledge`, `tags`). `index` and `style` default to the
    ones learnt from these records' references; pass them to score several models alike."""
    references = [record.get("reference") or "" for record in records]
    index = index or FactIndex(references)
    style = style or HouseStyle.learn(references)
    for k, record in enumerate(records):
        prediction, question = record.get("prediction") or "", record.get("question") or ""
        checked = check_facts(index.facts(k, question), prediction, question, index.ignored)
        scores = record.setdefault("scores", {})
        if checked["fact_recall"] is not None:
            scores["fact_recall"] = checked["fact_recall"]
        scores["contradicts"] = float(bool(checked["contradictions"]))
        scores |= behaviour_scores(prediction, references[k], question, style, record.get("stopped"))
        record["knowledge"] = {key: checked[key] for key in ("facts", "recalled", "contradictions")}
        if checked["contradictions"]:
            tags = [tag for tag in record.get("tags") or [] if tag != "wrong_answer"]
            record["tags"] = [*tags, CONTRADICTS] if CONTRADICTS not in tags else tags


def summarize(records: list[dict], *, seed: int = 0) -> dict:
    """Means of the knowledge and behaviour scores, `contradictions` (answers with one), the recounted
    failure tags, and `intervals`: {metric: [low, high]} (95% bootstrap of the mean)."""
    out: dict = {"intervals": {}}
    for name in (*KNOWLEDGE, *BEHAVIOUR):
        values = [r["scores"][name] for r in records if r.get("scores", {}).get(name) is not None]
        if not values:
            continue
        out[name] = float(np.mean(values))
        out["intervals"][name] = list(mean_interval(values, seed=seed))
    out["contradictions"] = sum(1 for r in records if r.get("scores", {}).get("contradicts"))
    out["examples_with_facts"] = sum(1 for r in records if r.get("scores", {}).get("fact_recall") is not None)
    out["failed"] = sum(1 for r in records if r.get("tags"))
    out["tags"] = count_tags(records)
    return out


def add_knowledge(results: dict[str, tuple[list[dict], dict]]) -> None:
    """Annotate every model's records against one fact index and house style, and merge the summaries
    into its metrics (in place)."""
    first = next(iter(results.values()), None)
    if first is None:
        return
    references = [record.get("reference") or "" for record in first[0]]
    index, style = FactIndex(references), HouseStyle.learn(references)
    for records, metrics in results.values():
        annotate(records, index=index, style=style)
        metrics.update(summarize(records))
