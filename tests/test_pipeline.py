"""`run` end to end on a tiny random model: every file of the run directory is there and sane."""

import json
from pathlib import Path

import pytest
import yaml

from tunesmith.config import load_config
from tunesmith.pipeline import run

ROWS = [{"question": f"What is code {i}?", "answer": f"Code {i} means box {i % 7}."} for i in range(40)]


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    data = root / "faq.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    config = load_config(None, [
        f"model={tiny_model_dir}", f"run_dir={root / 'run'}", f"data.path={data}", "data.test_size=8",
        "train.max_steps=6", "train.batch_size=4", "train.save_every=3", "train.log_every=1",
        "train.eval_every=3", "train.eval_generate=2",
        "eval.max_new_tokens=8", "eval.few_shot=2", "eval.forgetting_size=8",
    ])
    return run(config)


def test_run_directory_has_every_stage_output(finished_run):
    root = Path(finished_run.run_dir)
    for name in ["config.yaml", "data/data_report.json", "data/template.json", "train_log.jsonl",
                 "adapter/adapter_config.json", "adapter/template.json", "eval/metrics.json",
                 "eval/predictions.jsonl", "report.md", "report.html"]:
        assert (root / name).is_file(), name
    assert (root / "checkpoints").is_dir()


def test_resolved_config_is_written(finished_run, tiny_model_dir):
    saved = yaml.safe_load((Path(finished_run.run_dir) / "config.yaml").read_text())
    assert saved["model"] == str(tiny_model_dir)
    assert saved["train"]["max_steps"] == 6 and saved["train"]["lora"]["r"] == 16


def test_split_and_metrics_have_one_object_per_model(finished_run):
    report = json.loads((Path(finished_run.run_dir) / "data/data_report.json").read_text())
    assert report["rows_loaded"] == 40 and report["rows_rejected"] == 0
    assert report["train_examples"] == 32 and report["test_examples"] == 8
    metrics = finished_run.metrics
    assert set(metrics) >= {"base", "few_shot", "tuned"}
    for name in ("base", "few_shot", "tuned"):
        assert metrics[name]["n"] == 8
        for key in ("exact_match", "token_f1", "rouge_l"):
            assert 0.0 <= metrics[name][key] <= 1.0
    assert metrics["base"]["general_n"] == metrics["tuned"]["general_n"] == 8  # forgetting is measured by default
    assert "contradictions" in metrics["tuned"] and "format" in metrics["tuned"]
    rows = finished_run.table.splitlines()[2:]
    assert [r.split("  ")[0] for r in rows] == ["base (zero-shot)", "base (few-shot)", "fine-tuned"]


def test_train_log_counts_steps(finished_run):
    records = [json.loads(line) for line in (Path(finished_run.run_dir) / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss" in r]
    assert steps[-1] == 6
    answered = [(r["step"], r["eval_token_f1"]) for r in records if "eval_token_f1" in r]  # short answers: F1
    assert [step for step, _ in answered] == [3, 6] and all(0.0 <= value <= 1.0 for _, value in answered)
