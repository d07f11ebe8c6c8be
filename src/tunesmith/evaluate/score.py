"""`tunesmith score PREDICTIONS.jsonl`: tunesmith's metrics, tags, knowledge/behaviour split and report
for answers from any system (a hosted model, another tool), no model needed.

Each line: `{"prompt" (or "question"), "prediction" (or "response", "output"), "reference" (or
"answer")}`, optionally `"finish_reason"` ("length" = cut off). With `baseline`, a second file of the
same prompts in the same order is scored as "base" and the first as "tuned", so the report compares them.
Writes `OUT/eval/metrics.json`, `predictions*.jsonl`, `compare.json` and `OUT/report.md|html`.
"""

from __future__ import annotations

import time
from pathlib import Path

from tunesmith.errors import TunesmithError
from tunesmith.evaluate.examples import EvalExample, detect_task
from tunesmith.evaluate.knowledge import add_knowledge
from tunesmith.evaluate.metrics import aggregate, score_example
from tunesmith.evaluate.metrics.bleu import corpus_bleu
from tunesmith.evaluate.outputs import read_user_jsonl, write_outputs
from tunesmith.evaluate.tags import count_tags, failed, tag_failure
from tunesmith.runs import RunDir

FIELDS = {"prompt": ("prompt", "question"), "prediction": ("prediction", "response", "output"),
          "reference": ("reference", "answer")}  # fmt: skip
HINT = 'each line must look like {"prompt": "...", "prediction": "...", "reference": "..."}'


def read_predictions(path: str | Path) -> list[dict]:
    """Rows {source, prompt, prediction, reference, stopped} of a predictions file.

    Raises:
        TunesmithError: naming file:line for a missing file, bad JSON or a missing field.
    """
    return read_user_jsonl(path, "score", HINT, _row)


def _row(raw: dict, where: str) -> dict:
    row = {"source": where}
    for field, names in FIELDS.items():
        value = next((raw[name] for name in names if name in raw), None)
        if not isinstance(value, str):
            raise TunesmithError(f"{where}: needs a string '{field}' (or {', '.join(names[1:])}); {HINT}")
        row[field] = value
    row["stopped"] = "length" if raw.get("finish_reason") == "length" else ("eos" if "finish_reason" in raw else None)
    return row


def score_rows(rows: list[dict], task_type: str, extract: str | None) -> tuple[list[dict], dict]:
    """(records as compare writes them, metrics) for one system's rows."""
    records = []
    for index, row in enumerate(rows):
        scores = score_example(row["prediction"], row["reference"], extract)
        wrong = failed(scores, task_type)
        tags = tag_failure(row["prediction"], row["stopped"] or "eos", scores, extract) if wrong else []
        records.append({"index": index, "source": row["source"], "question": row["prompt"], "prompt": row["prompt"],
                        "reference": row["reference"], "prediction": row["prediction"], "stopped": row["stopped"],
                        "scores": scores, "tags": tags})  # fmt: skip
    metrics: dict = aggregate([record["scores"] for record in records])
    metrics["corpus_bleu"] = corpus_bleu([r["prediction"] for r in records], [r["reference"] for r in records])
    metrics["failed"] = sum(1 for record in records if record["tags"])
    metrics["tags"] = count_tags(records)
    metrics["task_type"] = task_type
    return records, metrics


def score(path: str | Path, out_dir: str | Path, *, baseline: str | Path | None = None, task_type: str = "auto",
          extract: str | None = None) -> dict:
    """Score a predictions file (and a baseline's), write eval/ and the report under `out_dir`; returns
    metrics.json's content."""
    from tunesmith.report import write_report

    started = time.time()
    systems = {"tuned": read_predictions(path)}
    if baseline is not None:
        systems = {"base": read_predictions(baseline), **systems}
        _check_same_prompts(systems["base"], systems["tuned"])
    rows = systems["tuned"]
    examples = [EvalExample(i, r["source"], [{"role": "user", "content": r["prompt"]}], "", r["reference"])
                for i, r in enumerate(rows)]  # fmt: skip
    task = detect_task(examples, task_type, extract)
    results = {name: score_rows(system, task.type, extract) for name, system in systems.items()}
    add_knowledge(results)
    run = RunDir(Path(out_dir))
    info = {"task": {"type": task.type, "reason": task.reason, "lead": task.lead}, "examples": len(rows),
            "extract": extract, "scored": {name: str(p) for name, p in (("tuned", path), ("base", baseline)) if p},
            "model": Path(path).name, "skipped": {}, "seconds": round(time.time() - started, 2)}  # fmt: skip
    write_outputs(run, results, info, keep_previous=False)
    write_report(run.root)
    return {name: metrics for name, (_, metrics) in results.items()}


def _check_same_prompts(base: list[dict], tuned: list[dict]) -> None:
    if len(base) != len(tuned):
        raise TunesmithError(f"score: the baseline has {len(base)} rows and the predictions {len(tuned)}; "
                             "give the same prompts in the same order")  # fmt: skip
    for a, b in zip(base, tuned, strict=True):
        if a["reference"] != b["reference"]:
            raise TunesmithError(f"score: {a['source']} and {b['source']} have different references; "
                                 "give the same prompts in the same order")  # fmt: skip
