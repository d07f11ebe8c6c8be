"""Config: defaults, YAML loading, --set overrides and the errors users see."""

from pathlib import Path

import pytest
import yaml

from tunesmith.config import Config, apply_overrides, field_help, load_config, parse_override
from tunesmith.errors import TunesmithError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_resolve_to_the_embedded_quickstart():
    config = load_config()
    assert config.model == "smollm2-135m-instruct"
    assert config.train.method == "lora" and config.train.lora.r == 16 and config.train.lora.alpha == 32
    assert config.data.test_size == 0.1 and config.data.template == "auto"
    assert config.eval.few_shot == 3 and config.eval.max_new_tokens == "auto"


def test_yaml_and_overrides_are_merged_with_types_parsed(tmp_path):
    path = write(tmp_path, "model: ./m\ntrain:\n  epochs: 2\n  lora:\n    r: 8\n")
    config = load_config(path, ["train.max_steps=20", "train.learning_rate=1e-3", "data.fields={question: q}",
                                "eval.extract=#### (\\d+)"])
    assert config.model == "./m"
    assert config.train.epochs == 2 and config.train.lora.r == 8
    assert config.train.max_steps == 20 and config.train.learning_rate == pytest.approx(1e-3)
    assert config.data.fields == {"question": "q"}
    assert config.eval.extract == "#### (\\d+)"


def test_override_parsing():
    assert parse_override("train.max_steps=20") == (["train", "max_steps"], 20)
    assert parse_override("data.packing=true") == (["data", "packing"], True)
    assert parse_override("run_dir=runs/a=b") == (["run_dir"], "runs/a=b")
    assert apply_overrides({"train": {"epochs": 1}}, ["train.epochs=4", "eval.few_shot=0"]) == {
        "train": {"epochs": 4}, "eval": {"few_shot": 0},
    }
    with pytest.raises(TunesmithError, match="expected KEY=VALUE"):
        parse_override("train.max_steps")
    with pytest.raises(TunesmithError, match="is a value, not a section"):
        apply_overrides({"model": "x"}, ["model.name=y"])


def test_unknown_key_gets_did_you_mean(tmp_path):
    with pytest.raises(TunesmithError, match=r"unknown key 'train.max_step' \(did you mean 'train.max_steps'\?\)"):
        load_config(write(tmp_path, "train:\n  max_step: 3\n"))
    with pytest.raises(TunesmithError, match=r"unknown key 'modle' \(did you mean 'model'\?\)"):
        load_config(None, ["modle=x"])


def test_wrong_types_and_impossible_values_name_the_field(tmp_path):
    with pytest.raises(TunesmithError) as err:
        load_config(None, ["train.batch_size=0", "data.format=xml"])
    message = str(err.value)
    assert "train.batch_size" in message and "greater than or equal to 1" in message and "got 0" in message
    assert "data.format" in message and "'xml'" in message
    with pytest.raises(TunesmithError, match="train.epochs"):
        load_config(None, ["train.epochs=many"])
    with pytest.raises(TunesmithError, match="test_size must be a fraction"):
        load_config(None, ["data.test_size=2.5"])


def test_bad_yaml_and_missing_file_say_where(tmp_path):
    with pytest.raises(TunesmithError, match=r"config.yaml:\d+: not valid YAML"):
        load_config(write(tmp_path, "model: x\ntrain: [unclosed\ndata: {x: 1}\n"))
    with pytest.raises(TunesmithError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(TunesmithError, match="must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_resolved_config_round_trips_through_yaml():
    config = load_config(None, ["train.max_steps=7", "data.packing=true"])
    again = Config.model_validate(yaml.safe_load(config.to_yaml()))
    assert again == config


def test_help_is_generated_from_the_models():
    rows = {key: (default, doc) for key, default, doc in field_help()}
    assert rows["train.lora.r"][0] == "16"
    assert rows["train.max_steps"][1] == "Stop after this many optimizer steps."
    assert "data.template" in rows and "eval.few_shot" in rows
