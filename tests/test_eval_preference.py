"""Preference accuracy on held-out pairs, base vs tuned."""

import pytest
import torch

from train_helpers import pair_rows, trainable_model
from tunesmith.evaluate.preference import pair_margins, preference_metrics
from tunesmith.evaluate.preference import pair_rows as held_out_pairs
from tunesmith.train.batching import TrainData, collate
from tunesmith.train.preference import sequence_logps


def test_metrics_by_hand():
    tuned, base = torch.tensor([2.0, -1.0, 0.5, 3.0]), torch.tensor([1.0, -2.0, 1.0, 3.0])
    out = preference_metrics(tuned, base)
    assert out["preference_accuracy"] == 0.75 and out["preference_margin"] == pytest.approx(1.125)
    assert out["preference_reward_accuracy"] == 0.5 and out["preference_reward_margin"] == pytest.approx(0.375)
    alone = preference_metrics(base)
    assert "preference_reward_accuracy" not in alone and alone["preference_n"] == 4


def test_margins_are_chosen_minus_rejected_log_likelihood():
    model, tokenizer = trainable_model("full")
    dataset = pair_rows(tokenizer, n=5)
    rows = held_out_pairs(dataset)
    assert len(rows) == 5 and held_out_pairs(dataset.remove_columns(["rejected_input_ids", "rejected_labels"])) is None
    margins = pair_margins(model, rows, tokenizer.pad_token_id, batch_size=2)
    batch = collate(TrainData.from_rows(dataset).rows, tokenizer.pad_token_id)
    with torch.no_grad():
        logps, _ = sequence_logps(model.eval(), batch.input_ids, batch.labels)
    torch.testing.assert_close(margins, logps[:5] - logps[5:])


def test_a_dpo_run_reports_preference_accuracy_base_vs_tuned(tmp_path, tiny_model_dir):
    import json

    from tunesmith.config import load_config
    from tunesmith.evaluate import compare
    from tunesmith.train import train

    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"What is {i} plus {i}?", "chosen": f"{2 * i}", "rejected": f"{2 * i + 1} maybe"}
            for i in range(30)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = load_config(None, [f"model={tiny_model_dir}", f"data.path={data}", f"run_dir={tmp_path / 'run'}",
                                "data.test_size=6", "train.objective=dpo", "train.max_steps=4",
                                "train.learning_rate=0.01", "train.compile=false", "eval.max_new_tokens=4",
                                "eval.few_shot=0"])
    train(config, progress=False)
    metrics = compare(config, models=("base", "tuned"), progress=False, similarity=False)
    base, tuned = metrics["base"], metrics["tuned"]
    assert base["preference_n"] == tuned["preference_n"] == 6
    assert "preference_reward_accuracy" in tuned and "preference_reward_accuracy" not in base
    assert tuned["preference_margin"] - base["preference_margin"] == pytest.approx(tuned["preference_reward_margin"])
    assert tuned["preference_reward_margin"] > 0  # DPO widened the gap on pairs it never saw
    predictions = [json.loads(x) for x in (tmp_path / "run" / "eval" / "predictions.jsonl").read_text().splitlines()]
    references = {r["reference"] for r in predictions}
    assert references <= {r["chosen"] for r in rows}  # the generation comparison scores against chosen
