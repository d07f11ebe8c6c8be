"""load_for_use: run directories (adapter or full model), exports and plain folders, with the training template."""

from __future__ import annotations

import shutil

import pytest
import torch

from test_serve_support import make_run_dir, save_lively_model
from tunesmith.data.templates import Template
from tunesmith.errors import TunesmithError
from tunesmith.loading import load_for_use


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return save_lively_model(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, base_dir):
    return make_run_dir(tmp_path_factory.mktemp("runs") / "faq-run", base_dir, template="qa")


def logits(model, ids=(5, 6, 7)) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([list(ids)])).logits


def test_run_dir_with_adapter_uses_the_recorded_template(run_dir):
    tuned = load_for_use(run_dir)
    assert tuned.name == "faq-run" and tuned.template.name == "qa"
    assert tuned.template == Template.load(run_dir / "adapter" / "template.json")
    base = load_for_use(run_dir, base_only=True)
    assert base.name == "faq-run:base" and base.template == tuned.template
    assert not torch.allclose(logits(base.model), logits(tuned.model))

    merged = load_for_use(run_dir, merge_adapter=True, device="auto")
    assert not hasattr(merged.model, "merge_and_unload")
    assert torch.allclose(logits(merged.model), logits(tuned.model), atol=1e-4)


def test_full_model_run_does_not_need_its_base(tmp_path, base_dir):
    run = tmp_path / "full-run"
    shutil.copytree(base_dir, run / "model")
    Template("chatml", "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n",
             stop_strings=("<|im_end|>",)).save(run / "model" / "template.json")
    (run / "config.yaml").write_text("model: /nowhere/deleted-base-model\n")
    loaded = load_for_use(run)
    assert loaded.name == "full-run" and loaded.template.name == "chatml"
    assert torch.allclose(logits(loaded.model), logits(load_for_use(base_dir).model))


def test_unusable_targets_are_user_errors(tmp_path, run_dir, base_dir):
    with pytest.raises(TunesmithError, match="adapter folder"):
        load_for_use(run_dir / "adapter")
    empty_run = tmp_path / "untrained"
    empty_run.mkdir()
    (empty_run / "config.yaml").write_text(f"model: {base_dir}\n")
    with pytest.raises(TunesmithError, match="no trained weights"):
        load_for_use(empty_run)
    assert load_for_use(empty_run, base_only=True).template.name == "chat"  # from data.template 'auto'
    (empty_run / "config.yaml").write_text("data: {}\n")
    with pytest.raises(TunesmithError, match="no 'model' key"):
        load_for_use(empty_run)
    with pytest.raises(TunesmithError, match="not a model folder"):
        load_for_use(tmp_path / "missing-folder")
