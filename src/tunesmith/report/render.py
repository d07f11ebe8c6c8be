"""Render the report: one context, two templates (report.md.j2, report.html.j2 beside this file)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from tunesmith.evaluate.outputs import read_json
from tunesmith.report import charts
from tunesmith.report.collect import ReportData
from tunesmith.report.content import (
    all_differences,
    changes,
    example_rows,
    fmt,
    metric_rows,
    model_label,
    models_in,
    tag_rows,
    verdict,
)
from tunesmith.report.knowledge import forgetting_line, judge_line, knowledge_verdict

CHART_DIR = "report_files"  # beside report.md, which links the PNGs (report.html embeds them)


def build_charts(data: ReportData) -> list[dict]:
    """[{key, title, png (bytes or None), note (why it is missing)}] in report order."""
    max_length = (data.config.get("data") or {}).get("max_length")
    return [
        {"key": "metrics", "title": "Scores per model", "png": charts.metrics_chart(data.metrics, data.lead),
         "note": "no 0-1 scores in eval/metrics.json"},
        {"key": "loss", "title": "Training and eval loss", "png": charts.loss_chart(data.train_log),
         "note": "no train_log.jsonl with loss values in this run"},
        {"key": "lengths", "title": "Tokens per example", "png": charts.length_chart(data.lengths, max_length),
         "note": "no prepared data (data/train, data/test) to measure"},
        {"key": "tags", "title": "What went wrong (failed generations by tag)", "png": charts.tags_chart(data.metrics),
         "note": "no failed generations"},
    ]  # fmt: skip


def context(data: ReportData, chart_list: list[dict]) -> dict:
    diffs = all_differences(data)
    wins, regressions = example_rows(data)
    models = models_in(data)
    return {
        "name": data.run.root.name,
        "model": data.config.get("model") or data.info.get("model", "?"),
        "generated": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "task_type": data.task_type,
        "task_reason": data.task_reason or "from eval/metrics.json",
        "lead": data.lead,
        "n": max((int(m.get("n") or 0) for m in data.metrics.values()), default=0),
        "verdict": verdict(data, diffs),
        "knowledge_verdict": knowledge_verdict(data, diffs),
        "forgetting": forgetting_line(data),
        "judge": judge_line(data),
        "models": models,
        "labels": {m: model_label(m) for m in models},
        "metric_rows": metric_rows(data, diffs),
        "has_few_shot": "few_shot" in data.metrics,
        "changes": changes(data),
        "tag_rows": tag_rows(data),
        "failed": {m: data.metrics[m].get("failed", 0) for m in models},
        "wins": wins,
        "regressions": regressions,
        "skipped": (data.info.get("skipped") or {}),
        "data_summary": data_summary(data),
        "timing": timing_rows(data),
        "versions": data.versions,
        "fingerprint": data.fingerprint.get("fingerprint", ""),
        "fingerprint_parts": {k: data.fingerprint.get(k) for k in ("data_file", "test_file", "tokenizer")},
        "config_yaml": yaml.safe_dump(data.config, sort_keys=False) if data.config else "",
        "charts": [{**c, "b64": base64.b64encode(c["png"]).decode() if c["png"] else ""} for c in chart_list],
        "chart_dir": CHART_DIR,
    }


def data_summary(data: ReportData) -> list[tuple[str, str]]:
    """(label, value) lines from data_report.json; any key may be missing."""
    report = data.data_report
    lines = []
    for key, label in (("rows_loaded", "rows loaded"), ("rows_rejected", "rows rejected"),
                       ("train_examples", "train examples"), ("test_examples", "test examples"),
                       ("format", "format"), ("template", "template")):  # fmt: skip
        if report.get(key) is not None:
            lines.append((label, f"{report[key]:,}" if isinstance(report[key], int) else str(report[key])))
    for part, stats in (report.get("lengths") or {}).items():
        if isinstance(stats, dict) and stats:
            shown = " / ".join(str(stats.get(k, "–")) for k in ("min", "median", "p95", "max"))
            lines.append((f"{part} tokens (min / median / p95 / max)", shown))
    truncated = (report.get("truncated") or {}).get("examples")
    if truncated is not None:
        lines.append(("examples truncated", f"{truncated:,}"))
    duplicates = report.get("duplicates") or {}
    if "test_in_train_exact" in duplicates:
        both = f"{duplicates['test_in_train_exact']} / {duplicates.get('test_in_train_near', '–')}"
        lines.append(("test prompts also in train (verbatim / near)", both))
    return lines


def timing_rows(data: ReportData) -> list[tuple[str, str]]:
    rows = [(f"{stage} (s)", fmt(seconds, 1)) for stage, seconds in data.timings.items()]
    for model in models_in(data):
        values = data.metrics[model]
        if values.get("seconds") is not None:
            speed = f", {fmt(values.get('tokens_per_s'), 0)} generated tok/s" if values.get("tokens_per_s") else ""
            rows.append((f"eval {model_label(model)}", f"{fmt(values['seconds'], 1)} s{speed}"))
    check = read_json(data.run.root / "check.json") or {}
    if check.get("summary"):
        rows.append(("tunesmith check (prompt ids, stop ids, greedy outputs)", str(check["summary"])))
    generation = data.info.get("generation") or {}
    if generation.get("summary"):
        rows.append(("eval generation", str(generation["summary"])))
    elif data.info.get("device"):
        rows.append(("eval device", str(data.info["device"])))
    return rows


def render(data: ReportData, chart_list: list[dict]) -> tuple[str, str]:
    """(report.md text, report.html text)."""
    folder = Path(__file__).parent
    values = context(data, chart_list)
    md_env = Environment(loader=FileSystemLoader(folder), undefined=StrictUndefined, autoescape=False)
    md_env.filters["cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    html_env = Environment(loader=FileSystemLoader(folder), undefined=StrictUndefined, autoescape=True)
    markdown = md_env.get_template("report.md.j2").render(**values)
    html = html_env.get_template("report.html.j2").render(**values)
    return markdown, html
