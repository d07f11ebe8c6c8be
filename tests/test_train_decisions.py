"""Each performance decision is recorded with its value, source and reason; hardware probes run once and are shown."""

import json

import pytest

from tunesmith.config import load_config
from tunesmith.train import speeds, train
from tunesmith.train.attention import SHORT_MAX_WIDTH
from tunesmith.train.decisions import Decision, attention_decision, chosen, precision_decisions
from tunesmith.train.hardware import Precision

DECIDED = [
    "precision", "frozen_weights", "attention", "share_prefix", "fuse_projections", "gradient_checkpointing", "compile",
    "loss_head",
]


@pytest.fixture
def probes(monkeypatch, tmp_path):
    """Fake probes that count their calls; the cache in a fresh TUNESMITH_HOME."""
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    calls = []
    monkeypatch.setattr(speeds, "matmul_gflops", lambda *a: calls.append("matmul") or 900.0)
    monkeypatch.setattr(speeds, "elementwise_gbps", lambda *a: calls.append("elementwise") or 30.0)
    probe = speeds._probe
    monkeypatch.setattr(speeds, "_probe", lambda *a: (*probe(*a)[:2], 0.0))  # as on an idle machine
    return calls


def test_probes_run_once_per_hardware_key_then_come_from_the_cache_which_is_shown(probes, tmp_path):
    first = speeds.hardware_speeds(576, 1536, "bf16", "cpu")
    cache = tmp_path / "home" / speeds.CACHE_FILE
    assert probes == ["matmul", "elementwise"] and first.source == "measured now"
    assert (first.matmul_gflops, first.elementwise_gbps) == (900.0, 30.0)
    assert json.loads(cache.read_text())[first.key]["matmul_gflops"] == 900.0
    assert f"measured now, cached in {cache}" in first.describe()

    again = speeds.hardware_speeds(576, 1536, "bf16", "cpu")
    assert probes == ["matmul", "elementwise"]  # not measured again
    assert again.source == "cached" and (again.matmul_gflops, again.elementwise_gbps) == (900.0, 30.0)
    shown = again.describe()
    assert f"cached in {cache} on {first.measured_on}" in shown and "remeasure_hardware=true" in shown
    assert "900 GFLOP/s" in shown and "30 GB/s" in shown

    speeds.hardware_speeds(576, 2048, "bf16", "cpu")  # another model width: another key
    speeds.hardware_speeds(576, 1536, "bf16", "cpu", remeasure=True)
    assert len(probes) == 6


def test_an_old_cache_entry_is_measured_again_and_a_busy_probe_is_flagged(probes, tmp_path, monkeypatch):
    first = speeds.hardware_speeds(576, 1536, "bf16", "cpu")
    cache = tmp_path / "home" / speeds.CACHE_FILE
    cache.write_text(json.dumps({first.key: [1000.0, 40.0]}))  # the old format: best speeds, no date
    monkeypatch.setattr(speeds, "_probe", lambda *a: (500.0, 20.0, 0.6))
    busy = speeds.hardware_speeds(576, 1536, "bf16", "cpu")
    assert busy.source == "measured now" and busy.others_busy == 0.6
    assert "other work took 60% of the CPU while probing" in busy.describe()
    monkeypatch.setattr(speeds, "_probe", lambda *a: (950.0, 31.0, 0.0))
    quiet = speeds.hardware_speeds(576, 1536, "bf16", "cpu")  # figures from a busy machine are not kept
    assert quiet.source == "measured now" and quiet.matmul_gflops == 950.0
    assert speeds.hardware_speeds(576, 1536, "bf16", "cpu").source == "cached"


def test_auto_decisions_say_why_and_config_values_say_so():
    assert chosen("auto", lambda: (True, "the estimate"), "train.compile") == Decision(True, "auto", "the estimate")
    assert chosen(False, lambda: pytest.fail("auto asked"), "train.compile") == Decision(
        False, "config", "train.compile is set"
    )
    made = precision_decisions("auto", Precision("bf16", "bf16", autocast=True), "lora", "cpu")
    assert made["precision"].value == "bf16" and made["precision"].source == "auto"
    assert made["frozen_weights"] == Decision(
        "bf16, autocast", "auto", "the rule for lora computing in bf16; follows train.precision"
    )
    assert precision_decisions("fp32", Precision("fp32", "fp32", False), "lora", "cpu")["precision"] == Decision(
        "fp32", "config", "train.precision is set"
    )

    short = attention_decision("auto", SHORT_MAX_WIDTH, "cpu", widest=190)
    assert short.value == f"short_rows up to {SHORT_MAX_WIDTH} tokens, sdpa above" and short.source == "auto"
    assert "(190 tokens) runs short_rows" in short.reason
    assert "runs sdpa" in attention_decision("auto", 128, "cpu", widest=190).reason
    assert attention_decision("auto", SHORT_MAX_WIDTH, "cuda", widest=190).value == "sdpa"
    assert attention_decision("auto", 0, "cpu", widest=190) == Decision(
        "sdpa", "auto", "train.short_rows_max_width is 0"
    )
    assert attention_decision("eager", SHORT_MAX_WIDTH, "cpu", widest=190) == Decision(
        "eager", "config", "train.attention is set"
    )


@pytest.fixture
def qa_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    rows = [{"question": f"What is {i} plus {i}?", "answer": f"It is {2 * i}."} for i in range(24)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _unwrapped(text: str) -> str:
    """Text with every run of whitespace as one space: the header wraps at the console's width."""
    return " ".join(text.split())


def _train(tmp_path, model_dir, data, name, *overrides):
    config = load_config(None, [f"model={model_dir}", f"data.path={data}", f"run_dir={tmp_path / name}",
                                "train.max_steps=2", "data.test_size=4", *overrides])
    train(config, progress=True)
    return json.loads((tmp_path / name / "train_info.json").read_text())


def test_train_records_and_shows_each_decision_and_the_config_overrides_them(
    tmp_path, tiny_model_dir, qa_file, probes, capsys, monkeypatch
):
    info = _train(tmp_path, tiny_model_dir, qa_file, "auto")
    header = _unwrapped(capsys.readouterr().err)
    decisions = info["decisions"]
    assert list(decisions) == DECIDED
    assert {name: d["source"] for name, d in decisions.items()} == {
        **dict.fromkeys(DECIDED, "auto"), "fuse_projections": "config", "share_prefix": "config"  # plain settings
    }
    assert decisions["fuse_projections"]["value"] == "4 groups"  # 2 layers x (q/k/v, gate/up)
    assert decisions["share_prefix"]["value"].endswith(" tokens")  # "<|im_start|>user\nWhat is" in every row
    assert decisions["compile"]["value"] is False and "s compile" in decisions["compile"]["reason"]
    assert decisions["gradient_checkpointing"]["value"] is False
    assert "GB available" in decisions["gradient_checkpointing"]["reason"]
    assert decisions["attention"]["value"].startswith("short_rows up to") and info["attention"] == (
        decisions["attention"]["value"]
    )
    for name, d in decisions.items():
        assert f" {name.replace('_', ' ')}: " in header and _unwrapped(d["reason"]) in header
    assert info["hardware_speeds"]["source"] == "measured now" and probes == ["matmul", "elementwise"]
    assert "hardware speeds: matmul 900 GFLOP/s, element-wise 30 GB/s (measured now" in header
    new_key = info["precision"]["compute"] != "fp32"  # fp32 below is another hardware key where auto is not fp32

    info = _train(tmp_path, tiny_model_dir, qa_file, "set", "train.compile=false", "train.gradient_checkpointing=true",
                  "train.attention=eager", "train.precision=fp32")
    header = _unwrapped(capsys.readouterr().err)
    decisions = info["decisions"]
    assert {name: (d["value"], d["source"]) for name, d in decisions.items() if d["source"] == "config"} == {
        "precision": ("fp32", "config"),
        "attention": ("eager", "config"),
        "fuse_projections": ("4 groups", "config"),
        "gradient_checkpointing": (True, "config"),
        "compile": (False, "config"),
    }
    assert decisions["frozen_weights"]["value"] == "fp32" and info["precision"]["compute"] == "fp32"
    assert len(probes) == (4 if new_key else 2)
    assert "gradient checkpointing: on (config: train.gradient_checkpointing is set)" in header

    info = _train(tmp_path, tiny_model_dir, qa_file, "again", "train.precision=fp32")
    assert len(probes) == (4 if new_key else 2)  # the second fp32 run reads the cache
    assert info["hardware_speeds"]["source"] == "cached"
    assert "cached in" in capsys.readouterr().err
