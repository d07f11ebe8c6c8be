"""`tunesmith pairs`: an evaluated run's wrong answers become preference data that loads as such."""

import json

from typer.testing import CliRunner

from tunesmith.cli import app
from tunesmith.config import validate_config
from tunesmith.data.load import load_rows
from tunesmith.data.prepare import prepare
from tunesmith.errors import TunesmithError


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_wrong_answers_become_pairs_that_load_as_preference_data(tiny_model_dir, tmp_path):
    rows = [{"question": f"What is {i} plus {i}?", "answer": f"{2 * i}"} for i in range(10)]
    rows[3]["system"] = "Answer with a number."
    run = tmp_path / "run"
    config = validate_config({"model": str(tiny_model_dir), "run_dir": str(run),
                              "data": {"path": str(_write(tmp_path / "qa.jsonl", rows)), "test_size": 4}})
    test = prepare(config, show=0).test
    (run / "eval").mkdir()
    (run / "eval" / "compare.json").write_text(json.dumps({"task": {"lead": ["exact_match"]}}))
    predictions = []
    for index, text in enumerate(test["example"]):
        reference = json.loads(text)["messages"][-1]["content"]
        answer = [reference, "seven", "", "no idea"][index]  # right, wrong, empty (skipped), wrong
        predictions.append({"index": index, "source": f"qa.jsonl:{index}", "reference": reference,
                            "prediction": answer, "scores": {"exact_match": float(answer == reference)}})
    predictions[0].update(prediction=predictions[0]["reference"] + " or so", tags=["contradiction"])
    predictions[0]["scores"]["exact_match"] = 1.0  # a high score, but a contradiction: still a pair
    _write(run / "eval" / "predictions_tuned.jsonl", predictions)

    result = CliRunner().invoke(app, ["pairs", str(run)])
    assert result.exit_code == 0, result.output
    assert "3 pairs from 4 answers (exact_match < 0.5)" in result.output
    pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]
    rejected = [p["rejected"] if isinstance(p["rejected"], str) else p["rejected"][0]["content"] for p in pairs]
    assert rejected[1:] == ["seven", "no idea"] and rejected[0].endswith(" or so")
    messages = json.loads(test["example"][1])["messages"]
    assert pairs[1]["prompt"] in (messages[-2]["content"], messages[:-1])
    loaded = load_rows(run / "pairs.jsonl")
    assert loaded.chosen_format == "preference"
    chosen = pairs[0]["chosen"] if isinstance(pairs[0]["chosen"], str) else pairs[0]["chosen"][0]["content"]
    assert len(loaded.examples()) == 3 and loaded.examples()[0]["messages"][-1]["content"] == chosen


def test_pairs_of_an_unevaluated_run_say_what_to_do(tmp_path):
    (tmp_path / "config.yaml").write_text("{}")
    result = CliRunner().invoke(app, ["pairs", str(tmp_path)])
    assert isinstance(result.exception, TunesmithError) and "tunesmith compare" in str(result.exception)
