"""train.eval_generate: answers generated for a few test examples at each evaluation, their task metric
logged beside eval loss, and keep_best / early stopping able to follow it (train.best_metric)."""

import json

import pytest

from train_helpers import FP32, qa_rows, settings, trainable_model
from tunesmith.config import TrainConfig
from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import encode_prompt
from tunesmith.train import fit
from tunesmith.train.evaluation import GenerationProbe

QUESTIONS = [("What is 2 plus 3?", "The answer is 5."), ("What is 4 plus 4?", "The answer is 8."),
             ("What is 1 plus 6?", "The answer is 7.")]  # fmt: skip


def probe_for(tokenizer) -> GenerationProbe:
    template = resolve_template("chatml", tokenizer)
    prompts = [encode_prompt(tokenizer, template, [{"role": "user", "content": q}]) for q, _ in QUESTIONS]
    return GenerationProbe(prompts, [a for _, a in QUESTIONS], "token_f1", tokenizer, template.stop_strings,
                           max_new_tokens=8, batch_size=4)  # fmt: skip


def evals(run_dir) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return [r for r in records if "eval_loss" in r]


@pytest.mark.parametrize("best_metric", ["eval_loss", "generation"])
def test_generation_metric_is_logged_and_can_pick_the_best(tmp_path, best_metric):
    model, tokenizer = trainable_model("full", FP32)  # learns "The answer is" within a few steps
    rows = qa_rows(tokenizer, n=40)
    probe = probe_for(tokenizer)
    result = fit(model, rows.select(range(32)), rows.select(range(32, 40)),
                 settings(max_steps=24, learning_rate=1e-2, eval_every=8, eval_generate=3, best_metric=best_metric),
                 tmp_path, pad_id=tokenizer.pad_token_id, precision=FP32, progress=False, probe=probe)  # fmt: skip
    logged = evals(tmp_path)
    assert [r["step"] for r in logged] == [8, 16, 24]
    assert all(0.0 <= r["eval_token_f1"] <= 1.0 for r in logged)
    assert logged[-1]["eval_token_f1"] > logged[0]["eval_token_f1"]  # it answers better as it trains
    model.eval()
    assert probe(model) == pytest.approx(logged[-1]["eval_token_f1"])  # the last point is the final model's
    key = (lambda r: -r["eval_token_f1"]) if best_metric == "generation" else (lambda r: r["eval_loss"])
    assert result.progress.best_step == min(logged, key=key)["step"]


def test_following_the_generation_metric_needs_examples():
    with pytest.raises(ValueError, match="best_metric 'generation' needs eval_generate > 0"):
        TrainConfig(best_metric="generation")
