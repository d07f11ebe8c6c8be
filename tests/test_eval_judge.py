"""The optional judge: reply parsing on crafted strings, and a real `tunesmith serve` app (uvicorn on
127.0.0.1, real HTTP) as the judge: a random tiny model (unparseable replies) and a scripted one."""

from __future__ import annotations

import pytest

from test_eval_compare import build_scripted_run, newline_script
from test_eval_models import scripted_model
from test_serve_support import running_server, tiny_loaded
from tiny import tiny_tokenizer
from tunesmith.data.templates import resolve_template
from tunesmith.errors import TunesmithError
from tunesmith.evaluate import compare
from tunesmith.evaluate.judge import JudgeClient, combine, judge_results, parse_verdict, parse_winner
from tunesmith.evaluate.outputs import read_jsonl
from tunesmith.loading import LoadedModel
from tunesmith.report import write_report
from tunesmith.serve.app import create_app


@pytest.mark.parametrize(
    ("reply", "verdict", "reason"),
    [
        ("VERDICT: correct\nREASON: States the $149 price.", "correct", "States the $149 price."),
        ("Verdict - Partially correct. Reason: misses the date", "partly", "misses the date"),
        ("**Verdict:** incorrect\n**Reason:** says nine, not seven", "wrong", "says nine, not seven"),
        ("wrong", "wrong", ""),
        ("The answer mentions Paris.", None, ""),
        ("", None, ""),
    ],
)
def test_parse_verdict(reply, verdict, reason):
    assert parse_verdict(reply) == {"verdict": verdict, "reason": reason}


@pytest.mark.parametrize(
    ("reply", "winner"),
    [("WINNER: A\nREASON: closer", "A"), ("winner: b", "B"), ("Winner: tie", "tie"), ("B", "B"),
     ("Both are bad.", None), ("A or B, hard to say", None)],
)
def test_parse_winner(reply, winner):
    assert parse_winner(reply) == winner


def test_positions_swapped_cancel_order_bias():
    assert combine("A", "B") == "tuned"  # tuned first and won; base first and lost
    assert combine("B", "A") == "base"
    assert combine("A", "A") == "tie"  # always the first position: order bias, not a preference
    assert combine("tie", "B") == "tie" and combine(None, "A") is None


def answers() -> dict:
    rows = [("How many countries?", "Seven countries.", "Nine countries.", "I am not sure."),
            ("What does it cost?", "It costs $149.", "It costs $149.", "About $99.")]
    def records(column):
        return [{"index": i, "question": q, "reference": ref, "prediction": row[column], "scores": {}}
                for i, (q, ref, *_), row in zip(range(2), rows, rows, strict=True)]  # fmt: skip
    return {"base": (records(3), {}), "tuned": (records(2), {})}


@pytest.fixture(scope="module")
def random_judge():
    with running_server(create_app(tiny_loaded(), model_name="judge")) as url:
        yield url + "/v1"


def test_unparseable_verdicts_from_a_real_server_are_counted_and_cached(random_judge, tmp_path):
    client = JudgeClient(random_judge, "judge", api_key=None, max_tokens=12, timeout=60, cache_path=tmp_path / "c.json")
    client.check()
    results = answers()
    identity = judge_results(results, client)
    assert identity == {"base_url": random_judge, "model": "judge", "requests": 8}  # 2 x 2 graded + 2 x 2 pairwise
    for records, metrics in results.values():
        graded = {key: value for key, value in metrics["judge"].items() if key != "pairwise"}
        assert graded == {"correct": 0, "partly": 0, "wrong": 0, "unparsed": 2}
        assert metrics["judge_score"] is None
        assert all(r["judge"]["verdict"] is None and "reply" in r["judge"] for r in records)
    assert results["tuned"][1]["judge"]["pairwise"] == {"tuned": 0, "base": 0, "tie": 0, "unparsed": 2}
    again = JudgeClient(random_judge, "judge", api_key=None, max_tokens=12, timeout=60, cache_path=tmp_path / "c.json")
    repeat = answers()
    judge_results(repeat, again)
    assert again.calls == 0 and repeat["tuned"][0][0]["judge"] == results["tuned"][0][0]["judge"]


def test_unreachable_judge_fails_early(tmp_path):
    client = JudgeClient("http://127.0.0.1:9/v1", "judge", api_key=None, max_tokens=8, timeout=5,
                         cache_path=tmp_path / "c.json")  # fmt: skip
    with pytest.raises(TunesmithError, match="eval.judge: cannot reach http://127.0.0.1:9/v1"):
        client.check()


def test_compare_with_a_served_scripted_judge(tmp_path, monkeypatch):
    tokenizer = tiny_tokenizer()
    says_wrong = scripted_model(tokenizer, newline_script(tokenizer, "wrong"), seed=3)
    loaded = LoadedModel(says_wrong, tokenizer, resolve_template("auto", tokenizer), "judge")
    with running_server(create_app(loaded)) as url:
        built = build_scripted_run(tmp_path, monkeypatch, judge={"base_url": url + "/v1", "model": "judge"})
        metrics = compare(built.config, models=("base", "tuned"), progress=False, similarity=False)
    for name in ("base", "tuned"):
        graded = {key: value for key, value in metrics[name]["judge"].items() if key != "pairwise"}
        assert graded == {"correct": 0, "partly": 0, "wrong": 4, "unparsed": 0}
        assert metrics[name]["judge_score"] == 0.0
    assert metrics["tuned"]["judge"]["pairwise"]["unparsed"] == 4  # "wrong" names no winner
    side = read_jsonl(built.run.eval / "predictions.jsonl")
    assert side[0]["tuned"]["judge"] == {"verdict": "wrong", "reason": "", "preference": None}
    assert (built.run.eval / "judge_cache.json").is_file()
    markdown = write_report(built.run.root)[0].read_text()
    assert f"**Judge:** Judge `judge` at {url}/v1: base: 0 correct, 0 partly, 4 wrong, 0 unparseable" in markdown
