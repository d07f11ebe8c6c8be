"""`tunesmith check`: all ✓ on a run saved as training saves it; a planted mismatch is a ✗ and exit 1."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from test_serve_support import make_run_dir
from tunesmith.cli import main
from tunesmith.data.templates import Template
from tunesmith.loading import load_for_use
from tunesmith.train.output import save_tokenizer_and_stops
from tunesmith.use.check import check


def saved_as_training_saves(run_dir):
    """Rewrite adapter/'s tokenizer and generation config as train/output.py writes them."""
    loaded = load_for_use(run_dir, dtype="fp32", merge_adapter=False)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "adapter")
    save_tokenizer_and_stops(loaded.model, tokenizer, Template.load(run_dir / "adapter" / "template.json"),
                             run_dir / "adapter")
    return run_dir


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory, tiny_model_dir):
    return make_run_dir(tmp_path_factory.mktemp("run") / "qa-run", tiny_model_dir, template="qa")


def test_a_run_saved_as_training_saves_it_checks_all_green_in_fp32(qa_run):
    result = check(saved_as_training_saves(qa_run), dtype="fp32", prompts=3, max_new_tokens=8)
    assert result.ok, result.summary()
    assert "3/3 identical" in result.summary()
    assert json.loads((qa_run / "check.json").read_text())["ok"] is True


def test_a_planted_template_mismatch_is_a_cross_and_exit_1(tmp_path, tiny_model_dir, capsys):
    run = make_run_dir(tmp_path / "planted", tiny_model_dir, template="alpaca")  # adapter/ keeps ChatML: the old bug
    with pytest.raises(SystemExit) as exit_info:
        main(["check", str(run), "--dtype", "fp32", "--prompts", "2"])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "✗" in out and "adapter/ prompt ids: first differing token at 0" in out
    assert json.loads((run / "check.json").read_text())["ok"] is False
