"""`tunesmith score`: a crafted predictions file from "another system" gets tunesmith's metrics, tags,
knowledge/behaviour split and report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tunesmith.cli import app
from tunesmith.errors import TunesmithError
from tunesmith.evaluate.outputs import read_jsonl
from tunesmith.evaluate.score import read_predictions, score

PREFIX = "Sprout Support:"
ROWS = [  # prompt, reference, a tuned-like answer, a base-like answer
    ("How many countries do you ship to?", f"{PREFIX} We ship to seven countries in Europe.",
     f"{PREFIX} We ship to nine countries in Europe.", "Shipping depends on the store."),
    ("What does the Sprout cost?", f"{PREFIX} The Sprout costs $149 with free shipping.",
     f"{PREFIX} The Sprout costs $149 with free shipping.", "Prices vary, it costs $99."),
    ("Where is it assembled?", f"{PREFIX} It is assembled in Penang by our partner.",
     f"{PREFIX} It is assembled in Penang by our partner.", "It is assembled in Shenzhen by a partner."),
    ("When did Lumenfold start?", f"{PREFIX} Lumenfold was founded in 2019 in Tacoma.",
     f"{PREFIX} Lumenfold was founded in 2019 in Tacoma.", "Lumenfold was founded in 2021."),
    ("Do you have an app?", f"{PREFIX} Yes, the Lumenfold app runs on iOS and Android.",
     f"{PREFIX} Yes, the Lumenfold app runs on iOS and Android.", "I am not sure about that."),
]  # fmt: skip


def write(path, answers, key="prediction", finish=None):
    lines = []
    for (prompt, reference, *_), answer in zip(ROWS, answers, strict=True):
        row = {"prompt": prompt, key: answer, "reference": reference}
        lines.append(json.dumps(row | ({"finish_reason": finish} if finish else {})) + "\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture
def files(tmp_path):
    tuned = write(tmp_path / "tuned.jsonl", [row[2] for row in ROWS])
    base = write(tmp_path / "base.jsonl", [row[3] for row in ROWS], key="response", finish="stop")
    return tuned, base


def test_score_a_file_against_a_baseline(files, tmp_path):
    tuned, base = files
    metrics = score(tuned, tmp_path / "out", baseline=base)
    assert list(metrics) == ["base", "tuned"]
    assert metrics["tuned"]["n"] == 5 and metrics["tuned"]["exact_match"] == pytest.approx(0.8)
    assert metrics["tuned"]["contradictions"] == 1 and metrics["base"]["contradictions"] == 3
    assert metrics["tuned"]["tags"]["contradicts_reference"] == 1
    assert metrics["tuned"]["format"] > metrics["base"]["format"]
    assert metrics["tuned"]["fact_recall"] > metrics["base"]["fact_recall"]
    assert metrics["base"]["stops"] == 1.0 and "stops" not in metrics["tuned"]  # no finish_reason given
    side = read_jsonl(tmp_path / "out" / "eval" / "predictions.jsonl")
    assert side[0]["tuned"]["knowledge"]["contradictions"][0]["prediction"] == "nine countries"
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "**Knowledge vs behaviour:** Tuned answers match the house style better" in markdown
    assert "with 1 answer contradicting the reference vs 3 for base" in markdown
    wins = markdown.split("### Largest wins")[1].split("### Largest regressions")[0]
    assert "nine countries" not in wins and "$149" in wins


def test_score_alone_and_from_the_command_line(files, tmp_path):
    tuned, _ = files
    result = CliRunner().invoke(app, ["score", str(tuned), "--out", str(tmp_path / "alone")])
    assert result.exit_code == 0, result.output
    assert "fine-tuned" in result.output and "report:" in result.output
    written = json.loads((tmp_path / "alone" / "eval" / "metrics.json").read_text())
    assert list(written) == ["tuned"] and written["tuned"]["contradictions"] == 1


def test_bad_predictions_files_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "q", "reference": "r"}\n')
    with pytest.raises(TunesmithError, match=r"bad.jsonl:1: needs a string 'prediction'"):
        read_predictions(path)
    good = write(tmp_path / "good.jsonl", [row[2] for row in ROWS])
    short = tmp_path / "short.jsonl"
    short.write_text(good.read_text().splitlines(keepends=True)[0])
    with pytest.raises(TunesmithError, match="the baseline has 1 rows and the predictions 5"):
        score(good, tmp_path / "out", baseline=short)
