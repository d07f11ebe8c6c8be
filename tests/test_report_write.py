"""write_report on an evaluated run built by hand: numbers, sections, charts, escaping, missing files."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from test_eval_compare import PARIS, SPROUT, build_scripted_run
from tunesmith.errors import TunesmithError
from tunesmith.evaluate import compare
from tunesmith.evaluate.analysis import differences
from tunesmith.evaluate.outputs import read_jsonl
from tunesmith.report import write_report

# one question the base model gets right, nine the fine-tuned model gets right
REPORT_TEST = [("Capital of France?", PARIS)] + [(f"Support question {k}?", SPROUT) for k in range(9)]


def add_run_files(root: Path) -> None:
    """What training and prep leave beside eval/: loss log, data report, timings."""
    log = [{"step": s, "loss": 3.0 / s, "lr": 1e-4, "tokens_per_s": 300.0} for s in range(1, 21)]
    log += [{"step": s, "eval_loss": 2.5 / s**0.5} for s in (5, 10, 15, 20)]
    (root / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log) + '{"step": 21, "lo')
    lengths = {"min": 9, "median": 14, "p95": 18, "max": 19}
    data_report = {"rows_loaded": 13, "train_examples": 3, "test_examples": 10, "lengths": {"total": lengths}}
    (root / "data" / "data_report.json").write_text(json.dumps(data_report))
    (root / "data" / "fingerprint.json").write_text(json.dumps({"fingerprint": "ab12cd", "data_file": "ff00"}))
    (root / "timings.json").write_text(json.dumps({"prep": 1.5, "train": 30.25, "compare": 9.0}))


def make_reported_run(root: Path, monkeypatch) -> Path:
    """An evaluated run directory with every file the report reads; returns its root."""
    built = build_scripted_run(root, monkeypatch, test=REPORT_TEST)
    compare(built.config, progress=False, similarity=False)
    add_run_files(built.run.root)
    return built.run.root


@pytest.fixture
def reported(tmp_path, monkeypatch):
    root = make_reported_run(tmp_path, monkeypatch)
    return root, write_report(root)


def test_report_files_and_verdict(reported):
    root, (md_path, html_path) = reported
    assert (md_path, html_path) == (root / "report.md", root / "report.html")
    md = md_path.read_text()
    assert "On exact match, the fine-tuned model is better than the base model zero-shot (0.100 → 0.900, +0.800" in md
    assert "9** better, **1** worse, 0 unchanged" in md
    assert "task: **extraction**" in md
    row = next(line for line in md.splitlines() if line.startswith("| ★ exact match"))
    assert [cell.strip() for cell in row.split("|")[2:6]] == ["0.100", "0.100", "0.900", "+0.800"]
    for chart in ("metrics", "loss", "lengths", "tags"):
        assert f"(report_files/{chart}.png)" in md
        assert (root / "report_files" / f"{chart}.png").read_bytes().startswith(b"\x89PNG")
    assert "data fingerprint: `ab12cd`" in md and "train (s): 30.2" in md


def test_wins_and_regressions_side_by_side(reported):
    md = reported[1][0].read_text()
    wins = md.split("### Largest wins")[1].split("### Largest regressions")[0]
    regressions = md.split("### Largest regressions")[1].split("## Run")[0]
    assert wins.count("| +1.00 |") == 9 and regressions.count("| -1.00 |") == 1
    assert "| Capital of France? | Paris is the capital of France. | Paris is the capital of France. |" in regressions


def test_html_is_self_contained_with_every_chart(reported):
    html = reported[1][1].read_text()
    images = re.findall(r'<img class="chart" data-chart="(\w+)" alt="[^"]*" src="data:image/png;base64,([^"]+)"', html)
    assert [key for key, _ in images] == ["metrics", "loss", "lengths", "tags"]
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for _, data in images)
    assert 'id="metrics"' in html and 'id="wins"' in html and 'id="regressions"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from anywhere


def test_html_escapes_model_output(tmp_path, monkeypatch):
    root = make_reported_run(tmp_path, monkeypatch)
    path = root / "eval" / "predictions.jsonl"
    rows = read_jsonl(path)
    rows[0]["question"] = "<script>alert('x')</script>"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, html_path = write_report(root)
    html = html_path.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


def test_report_with_only_metrics(tmp_path):
    (tmp_path / "eval").mkdir()
    metrics = {"base": {"exact_match": 0.2, "n": 5}, "tuned": {"exact_match": 0.6, "n": 5}}
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps(metrics))
    md_path, html_path = write_report(tmp_path)
    md, html = md_path.read_text(), html_path.read_text()
    assert "no train_log.jsonl with loss values" in md and "no prepared data" in md
    assert "| ★ exact match | 0.200 | 0.600 | +0.400 |" in md
    assert html.count('class="note chart-missing"') == 3  # loss, lengths, tags; the score chart is drawn


def test_report_needs_an_evaluated_run(tmp_path):
    with pytest.raises(TunesmithError, match="run `tunesmith compare"):
        write_report(tmp_path)


def test_bootstrap_interval_covers_the_difference_and_excludes_zero_when_clear():
    rows = [{"index": k, "base": {"scores": {"token_f1": 0.0}}, "tuned": {"scores": {"token_f1": float(k % 10 != 0)}}}
            for k in range(50)]  # fmt: skip
    [diff] = differences(rows, "base", "tuned", ["token_f1"])
    assert diff.value == pytest.approx(0.9)
    assert 0.75 < diff.low < 0.9 < diff.high <= 1.0 and diff.significant
    same = [{"index": k, "base": {"scores": {"f": 0.5}}, "tuned": {"scores": {"f": 0.5}}} for k in range(10)]
    assert not differences(same, "base", "tuned", ["f"])[0].significant


def test_perplexity_difference_uses_token_weighted_nll():
    rows = [{"index": 0, "base": {"scores": {}, "nll": 2.0, "answer_tokens": 2},
             "tuned": {"scores": {}, "nll": 1.0, "answer_tokens": 2}}] * 5  # fmt: skip
    [diff] = differences(rows, "base", "tuned", ["perplexity"])
    assert diff.value == pytest.approx(2.718281828**0.5 - 2.718281828) and diff.low == pytest.approx(diff.value)
