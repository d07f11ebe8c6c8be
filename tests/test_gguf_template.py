"""A GGUF loaded back keeps its chat template; one without a template is refused, never alpaca."""

from __future__ import annotations

import pytest

from tunesmith import loading
from tunesmith.errors import TunesmithError
from tunesmith.models import ResolvedModel


def test_a_gguf_without_a_chat_template_asks_for_data_template(tmp_path, monkeypatch, tiny_model_dir):
    from transformers import AutoTokenizer

    folder = tmp_path / "converted"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    monkeypatch.setattr(loading, "resolve_model", lambda spec: ResolvedModel(spec, folder, "gguf"))
    with pytest.raises(TunesmithError, match="no chat template.*data.template"):
        loading.load_for_use(str(tmp_path / "model.gguf"))


def test_a_gguf_with_a_chat_template_uses_it(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setattr(loading, "resolve_model", lambda spec: ResolvedModel(spec, tiny_model_dir, "gguf"))
    loaded = loading.load_for_use(str(tmp_path / "model.gguf"), dtype="fp32")
    assert loaded.template.name == "chat" and loaded.name == "model"
