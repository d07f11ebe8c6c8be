"""bench/faq_rows.py, the FAQ-like short-row set of bench/bench_short_rows.py: shapes, count, determinism,
and (on ../shared/data with the embedded model's tokenizer) the token lengths the bench is meant to have."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import faq_rows  # noqa: E402


def write_sources(root: Path, arc: int = 30, gsm: int = 40) -> Path:
    """ARC-Easy- and GSM8K-shaped files; every fourth GSM8K problem is too long to keep."""
    (root / "arc_easy").mkdir(parents=True)
    (root / "gsm8k").mkdir()
    arc_rows = [{"id": f"q{i}", "question": f"Which thing number {i} is right?",
                 "choices": {"text": ["red", "green", "blue", "none"], "label": ["A", "B", "C", "D"]},
                 "answerKey": "ABCD"[i % 4]} for i in range(arc)]  # fmt: skip
    gsm_rows = [{"question": f"Ann has {i} apples" + " and more" * (100 if i % 4 == 0 else 1) + ". How many?",
                 "answer": f"She has {i} + 1 = <<{i}+1={i + 1}>>{i + 1} apples.\n#### {i + 1}"}
                for i in range(gsm)]  # fmt: skip
    for name, rows in (("arc_easy", arc_rows), ("gsm8k", gsm_rows)):
        (root / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


def test_rows_are_distinct_short_and_shaped_from_both_sources(tmp_path):
    rows = faq_rows.build(write_sources(tmp_path), rows=20, seed=0)
    assert len(rows) == 20
    assert len({r["question"] for r in rows}) == 20
    arc = [r for r in rows if r["question"].startswith("Which thing")]
    gsm = [r for r in rows if r["question"].startswith("Ann has")]
    assert len(arc) == round(20 * faq_rows.ARC_SHARE) and len(gsm) == 20 - len(arc)
    assert all(r["question"].endswith("\nA. red\nB. green\nC. blue\nD. none") for r in arc)
    assert {r["answer"] for r in arc} <= {"A. red", "B. green", "C. blue", "D. none"}
    assert all(len(r["question"]) + len(r["answer"]) <= faq_rows.MAX_CHARS for r in gsm)
    for row in gsm:
        count = int(row["question"].split()[2])
        assert row["answer"] == f"She has {count} + 1 = {count + 1} apples.\nThe answer is {count + 1}."


def test_the_same_seed_gives_the_same_rows_and_another_seed_others(tmp_path):
    source = write_sources(tmp_path)
    first = faq_rows.build(source, rows=20, seed=0)
    assert faq_rows.build(source, rows=20, seed=0) == first
    assert faq_rows.build(source, rows=20, seed=1) != first


def test_too_few_short_rows_is_said_with_the_count(tmp_path):
    with pytest.raises(SystemExit, match="yields 39 distinct short rows; asked for 60"):
        faq_rows.build(write_sources(tmp_path, arc=30, gsm=12), rows=60)


def test_length_stats_take_the_median_p95_and_max():
    assert faq_rows.length_stats(list(range(1, 101))) == {"rows": 100, "median": 50.5, "p95": 95, "max": 100}


@pytest.mark.integration
@pytest.mark.skipif(not (faq_rows.SHARED_DATA / "arc_easy").is_dir(), reason="../shared/data is not beside the repo")
def test_the_bench_rows_are_short_in_the_embedded_models_chat_template():
    from transformers import AutoTokenizer

    from tunesmith.models import resolve_model

    rows = faq_rows.build()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct").path)
    stats = faq_rows.length_stats(faq_rows.token_lengths(rows, tokenizer))
    assert stats["rows"] == 1400
    assert 110 <= stats["median"] <= 120
    assert 180 <= stats["p95"] <= 210
