"""Forgetting by default: the bundled general-knowledge set, ARC's native row shape, the paired change,
compare writing it, the report's line, and the table naming acc and acc_norm honestly."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from test_eval_compare import build_scripted_run
from tunesmith.errors import TunesmithError
from tunesmith.evaluate import compare, format_table
from tunesmith.evaluate.choice import load_choices
from tunesmith.evaluate.forgetting import BUNDLED, DATA_DIR, accuracy_change, general_questions
from tunesmith.evaluate.outputs import read_jsonl
from tunesmith.report import write_report

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_set_has_200_arc_questions_its_licence_and_source():
    rows = general_questions()
    assert len(rows) == 200 and len(general_questions(20)) == 20
    assert all(2 <= len(row.choices) <= 5 and 0 <= row.answer < len(row.choices) for row in rows)
    assert len({row.question for row in rows}) == 200
    assert "CC BY-SA 4.0" in (DATA_DIR / "LICENSE").read_text() and "ARC" in (DATA_DIR / "SOURCE.md").read_text()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = " ".join(package_data["tunesmith"])
    for name in ("evaluate/data/*.jsonl", "evaluate/data/LICENSE", "evaluate/data/SOURCE.md"):
        assert name in shipped
    first = json.loads(BUNDLED.read_text().splitlines()[0])
    assert set(first) == {"id", "question", "choices", "answerKey"}  # ARC's own shape, unchanged


def test_native_arc_rows_load_with_letter_or_number_labels(tmp_path):
    path = tmp_path / "arc.jsonl"
    rows = [{"question": "Q1?", "choices": {"text": ["a", "b", "c"], "label": ["A", "B", "C"]}, "answerKey": "C"},
            {"question": "Q2?", "choices": {"text": ["x", "y"], "label": ["1", "2"]}, "answerKey": "1"},
            {"question": "Q3?", "choices": ["p", "q"], "answer": 1}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = [(r.choices, r.answer) for r in load_choices(path)]
    assert loaded == [(["a", "b", "c"], 2), (["x", "y"], 0), (["p", "q"], 1)]
    path.write_text(json.dumps({**rows[0], "answerKey": "E"}) + "\n")
    with pytest.raises(TunesmithError, match=r"arc.jsonl:1: 'answerKey' 'E' is not one of the labels"):
        load_choices(path)


def test_accuracy_change_pairs_questions():
    base = [{"source": f"q{i}", "answer": 0, "pred": 0, "pred_norm": 0} for i in range(10)]
    tuned = [{**row, "pred": 1 if i < 3 else 0} for i, row in enumerate(base)]
    change = accuracy_change(base, tuned)
    assert change.value == pytest.approx(-0.3) and change.high <= 0 and change.low >= -0.7
    assert accuracy_change(base, tuned, norm=True).value == 0.0


def test_compare_scores_general_knowledge_for_base_and_tuned(tmp_path, monkeypatch):
    built = build_scripted_run(tmp_path, monkeypatch, forgetting=True, forgetting_size=3)
    metrics = compare(built.config, progress=False, similarity=False)
    for name in ("base", "tuned"):
        assert metrics[name]["general_n"] == 3
        assert metrics[name]["general_accuracy"] in (0.0, 1 / 3, 2 / 3, 1.0)
        examples = read_jsonl(built.run.eval / f"general_{name}.jsonl")
        assert [row["source"].rsplit(":", 1)[1] for row in examples] == ["1", "2", "3"]
        assert metrics[name]["general_accuracy"] == sum(r["pred"] == r["answer"] for r in examples) / 3
    assert "general_n" not in metrics["few_shot"]
    assert json.loads((built.run.eval / "compare.json").read_text())["forgetting"] == 3
    markdown = write_report(built.run.root)[0].read_text()
    base, tuned = (100 * metrics[m]["general_accuracy"] for m in ("base", "tuned"))
    line = f"General knowledge (3 ARC-Easy questions, log-likelihood): accuracy base {base:.1f}% → tuned {tuned:.1f}%"
    assert line in markdown
    table = format_table(metrics)
    assert "GK acc " in table and "GK acc_norm" in table


def test_table_names_acc_and_acc_norm():
    table = format_table({"base": {"n": 3, "choice_accuracy": 0.46, "choice_accuracy_norm": 0.4}})
    header, _, row = table.splitlines()
    assert header.split() == ["model", "MC", "acc", "MC", "acc_norm", "n"]
    assert "0.460" in row and "0.400" in row
