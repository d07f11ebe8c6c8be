"""`tunesmith.train(config)` end to end on a tiny model folder: what lands in the run directory."""

import json
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tunesmith.config import load_config
from tunesmith.data.templates import Template
from tunesmith.errors import TunesmithError
from tunesmith.loading import load_for_use
from tunesmith.train import train
from tunesmith.train.hardware import check_method, resolve_precision
from tunesmith.train.record import should_resume as _should_resume


@pytest.fixture
def qa_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(
        "".join(
            json.dumps({"question": f"What is {i} plus {i}?", "answer": f"It is {2 * i}."}) + "\n" for i in range(40)
        )
    )
    return path


def _config(tmp_path, model_dir, data, *overrides):
    return load_config(
        None,
        [
            f"model={model_dir}",
            f"data.path={data}",
            f"run_dir={tmp_path / 'run'}",
            "train.max_steps=4",
            "train.log_every=1",
            "train.save_every=2",
            "data.test_size=8",
            *overrides,
        ],
    )


def test_lora_run_writes_adapter_tokenizer_template_log_and_provenance(tmp_path, tiny_model_dir, qa_file):
    config = _config(tmp_path, tiny_model_dir, qa_file)
    result = train(config, progress=False)
    run = tmp_path / "run"

    assert result.output_dir == run / "adapter" and result.steps == 4
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "template.json"} <= {
        p.name for p in result.output_dir.iterdir()
    }
    assert Template.load(result.output_dir / "template.json") == Template.load(run / "data" / "template.json")
    assert all("lora_" in name for name in load_file(result.output_dir / "adapter_model.safetensors"))
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["max_steps"] == 4
    assert [r["step"] for r in map(json.loads, result.log_path.read_text().splitlines()) if "loss" in r] == [1, 2, 3, 4]

    info = json.loads((run / "train_info.json").read_text())
    assert info["libraries"]["torch"] == torch.__version__ and info["libraries"]["peft"]
    assert info["data_fingerprint"] == json.loads((run / "data" / "fingerprint.json").read_text())["fingerprint"]
    assert info["command"] and info["reproduce"] == f"tunesmith train {run / 'config.yaml'} --set run_dir={run}-repro"
    assert set(result.estimate) == {"estimated", "measured"}
    assert result.estimate["estimated"]["trainable_params"] > 0 and result.peak_rss_gb > 0

    loaded = load_for_use(run, merge_adapter=False)  # the eval/serve stages load exactly what was trained
    assert hasattr(loaded.model, "peft_config") and loaded.template == Template.load(run / "data" / "template.json")


def test_full_run_writes_a_standalone_model(tmp_path, tiny_model_dir, qa_file):
    result = train(_config(tmp_path, tiny_model_dir, qa_file, "train.method=full"), progress=False)
    assert result.output_dir.name == "model"
    assert (result.output_dir / "model.safetensors").is_file() and (result.output_dir / "template.json").is_file()


@pytest.mark.parametrize(("full_weights", "master_weights"), [("bf16-master", "fp32"), ("fp32-autocast", None)])
def test_full_run_in_bf16_saves_the_fp32_weights_it_trained(tmp_path, tiny_model_dir, qa_file, full_weights,
                                                            master_weights):
    """bf16-master: the saved model is the fp32 masters of the last step, and it loads as a plain HF model."""
    from tunesmith.models import load_model

    config = _config(tmp_path, tiny_model_dir, qa_file, "train.method=full", "train.precision=bf16",
                     f"train.full_weights={full_weights}")
    result = train(config, progress=False)
    info = json.loads((tmp_path / "run" / "train_info.json").read_text())
    assert info["precision"] == {"compute": "bf16", "frozen_weights": "bf16" if master_weights else "fp32",
                                 "autocast": not master_weights, "master_weights": master_weights}
    model = load_model(result.output_dir)
    last = load_file(tmp_path / "run" / "checkpoints" / "step-4" / "weights.safetensors")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert all(torch.equal(p, last[f"model.{name}"]) for name, p in model.named_parameters())


def test_a_second_run_of_a_finished_config_trains_nothing_and_keeps_the_record(tmp_path, tiny_model_dir, qa_file):
    config = _config(tmp_path, tiny_model_dir, qa_file)
    first = train(config, progress=False)
    record = (tmp_path / "run" / "train_info.json").read_text()
    weights = (first.output_dir / "adapter_model.safetensors").read_bytes()
    again = train(config.model_copy(update={"train": config.train.model_copy(update={"max_steps": 4})}), progress=False)
    assert (tmp_path / "run" / "train_info.json").read_text() == record  # not clobbered with final_loss: null
    assert (first.output_dir / "adapter_model.safetensors").read_bytes() == weights
    assert again.steps == first.steps == 4 and again.final_loss == first.final_loss is not None


def test_resume_flags_and_settings(tmp_path):
    empty, full = tmp_path / "empty", tmp_path / "full"
    (full / "step-2").mkdir(parents=True)
    (full / "step-2" / "state.json").write_text("{}")
    assert _should_resume("auto", None, empty) is False
    assert _should_resume("auto", None, full) is True
    assert _should_resume("never", None, full) is False
    assert _should_resume("auto", False, full) is False
    with pytest.raises(TunesmithError, match="--resume: no checkpoint"):
        _should_resume("auto", True, empty)
    with pytest.raises(TunesmithError, match="train.resume: always"):
        _should_resume("always", None, empty)


def test_qlora_without_bitsandbytes_says_how_to_install_it_and_suggests_lora(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails
    with pytest.raises(TunesmithError, match=r"qlora needs bitsandbytes.*tunesmith\[qlora\].*train.method: lora"):
        check_method("qlora")


def test_precision_auto_and_explicit_choices(monkeypatch):
    monkeypatch.setattr("tunesmith.train.hardware.cpu_has_bf16", lambda: True)
    lora = resolve_precision("auto", "lora", "cpu")
    assert (lora.compute, lora.frozen_weights, lora.autocast) == ("bf16", "bf16", True)
    full = resolve_precision("auto", "full", "cpu")  # fp32 weights under autocast (test_train_masters.py)
    assert (full.compute, full.frozen_weights, full.autocast) == ("bf16", "fp32", True)
    monkeypatch.setattr("tunesmith.train.hardware.cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", "lora", "cpu").compute == "fp32"
    with pytest.raises(TunesmithError, match="train.precision: fp16 needs a GPU"):
        resolve_precision("fp16", "lora", "cpu")


def test_self_supervised_text_data_trains_through_the_same_entry_point(tmp_path, tiny_model_dir):
    data = tmp_path / "notes.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": f"Note {i}: the quick brown fox jumps over the lazy dog."}) + "\n" for i in range(40)
        )
    )
    result = train(_config(tmp_path, tiny_model_dir, data, "data.format=text"), progress=False)
    losses = [r["loss"] for r in map(json.loads, result.log_path.read_text().splitlines()) if "loss" in r]
    assert result.steps == 4 and losses[-1] < losses[0]


def test_qlora_trains_a_few_steps_on_4bit_weights(tmp_path, tiny_model_dir, qa_file):
    pytest.importorskip("bitsandbytes")  # the `qlora` extra (in `dev` too)
    config = _config(tmp_path, tiny_model_dir, qa_file, "train.method=qlora", "train.max_steps=6",
                     "train.learning_rate=0.01", "train.compile=false")
    result = train(config, progress=False)
    losses = [r["loss"] for r in map(json.loads, result.log_path.read_text().splitlines()) if "loss" in r]
    assert result.output_dir == tmp_path / "run" / "adapter" and len(losses) == 6
    assert losses[-1] < losses[0]
    adapter = load_file(result.output_dir / "adapter_model.safetensors")
    assert adapter and all("lora_" in name for name in adapter)
