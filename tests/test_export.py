"""`tunesmith export --merge`: a folder plain transformers loads, generating exactly what base + adapter did."""

from __future__ import annotations

import json
import stat

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from test_serve_support import make_run_dir
from tunesmith.data.tokenize import encode_prompt
from tunesmith.errors import TunesmithError
from tunesmith.loading import load_for_use
from tunesmith.use.export import export

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}],
    [{"role": "user", "content": "0 1 2"}, {"role": "assistant", "content": "3 4"}, {"role": "user", "content": "5"}],
]


def greedy(model, ids: list[int], max_new_tokens: int = 12) -> list[int]:
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0)
    return out[0, len(ids):].tolist()


@pytest.fixture(scope="module", params=["chat", "alpaca"])
def each_run_dir(request, tmp_path_factory, tiny_model_dir):
    return make_run_dir(tmp_path_factory.mktemp("run") / "my-run", tiny_model_dir, template=request.param)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dir):
    return make_run_dir(tmp_path_factory.mktemp("run") / "my-run", tiny_model_dir)


def test_merged_export_matches_base_plus_adapter(each_run_dir, tmp_path, tiny_model_dir):
    run_dir = each_run_dir
    out = export(run_dir, tmp_path / "export", merge=True)
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "template.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)

    tuned = load_for_use(run_dir, dtype="fp32", merge_adapter=False)  # base + adapter, unmerged
    assert type(tuned.model).__name__.startswith("Peft")
    used = load_for_use(run_dir, dtype="fp32")  # what every command runs: merged in fp32 at load
    assert type(used.model).__name__ == "LlamaForCausalLM"
    merged = AutoModelForCausalLM.from_pretrained(out)  # plain transformers, no tunesmith
    tokenizer = AutoTokenizer.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    changed = 0
    for messages in CONVERSATIONS:
        ids = encode_prompt(tuned.tokenizer, tuned.template, messages)
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert tokenizer(rendered, add_special_tokens=False).input_ids == ids  # the training template
        expected = greedy(tuned.model, ids)
        assert greedy(merged, ids) == expected
        assert greedy(used.model, ids) == expected  # merging changes no prediction in fp32
        changed += greedy(base, ids) != expected
    assert changed  # the adapter matters, so the comparison means something

    eos = merged.generation_config.eos_token_id
    assert tokenizer.eos_token_id in (eos if isinstance(eos, list) else [eos])
    assert json.loads((out / "template.json").read_text())["name"] == tuned.template.name
    assert load_for_use(out).template == tuned.template  # tunesmith reads it back exactly


def test_export_refuses_what_it_cannot_do(run_dir, tmp_path, monkeypatch):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "file").write_text("x")
    with pytest.raises(TunesmithError, match="not empty"):
        export(run_dir, taken)
    with pytest.raises(TunesmithError, match="needs --merge"):
        export(run_dir, tmp_path / "unmerged", merge=False)
    monkeypatch.delenv("TUNESMITH_GGUF_CONVERTER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    with pytest.raises(TunesmithError, match="converter, which was not found"):
        export(run_dir, tmp_path / "gguf", gguf=True)
    assert not (tmp_path / "gguf").exists() and not (tmp_path / "unmerged").exists()


FAKE_CONVERTER = """
import os, sys, pathlib
from gguf import GGUFWriter
from transformers import AutoTokenizer
folder, outfile = sys.argv[1], sys.argv[sys.argv.index('--outfile') + 1]
tokenizer = AutoTokenizer.from_pretrained(folder)
writer = GGUFWriter(outfile, "llama")
if not os.environ.get("FAKE_DROP_TEMPLATE"):
    writer.add_chat_template(tokenizer.chat_template)
writer.add_eos_token_id(tokenizer.eos_token_id)
writer.add_bos_token_id(tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 0)
writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file(); writer.close()
"""


def test_gguf_carries_the_training_template_and_eos_or_export_refuses(run_dir, tmp_path, monkeypatch):
    from tunesmith.models import _apply_gguf_metadata, gguf_metadata

    converter = tmp_path / "convert_hf_to_gguf.py"
    converter.write_text(FAKE_CONVERTER)
    converter.chmod(converter.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("TUNESMITH_GGUF_CONVERTER", str(converter))
    out = export(run_dir, tmp_path / "with-gguf", gguf=True)
    exported = AutoTokenizer.from_pretrained(out)
    metadata = gguf_metadata(out / "model.gguf")
    assert metadata["chat_template"] == exported.chat_template and metadata["eos_token_id"] == exported.eos_token_id
    bare = AutoTokenizer.from_pretrained(out)
    bare.chat_template = None
    _apply_gguf_metadata(bare, metadata)  # what loading a GGUF back does with what transformers dropped
    assert bare.chat_template == exported.chat_template

    monkeypatch.setenv("FAKE_DROP_TEMPLATE", "1")
    with pytest.raises(TunesmithError, match="without chat_template"):
        export(run_dir, tmp_path / "no-template", gguf=True)
    assert not (tmp_path / "no-template" / "model.gguf").exists()
    monkeypatch.delenv("FAKE_DROP_TEMPLATE")

    converter.write_text("import sys\nprint('unsupported architecture', file=sys.stderr)\nsys.exit(1)\n")
    with pytest.raises(TunesmithError, match="unsupported architecture"):
        export(run_dir, tmp_path / "failing", gguf=True)
    assert (tmp_path / "failing" / "config.json").is_file()  # the HF export itself is kept
