"""The one load policy: which dtype every command runs a model in, and why."""

from __future__ import annotations

import pytest

from tunesmith import precision
from tunesmith.errors import TunesmithError
from tunesmith.precision import load_policy


def test_auto_is_bf16_only_where_the_hardware_computes_it(monkeypatch):
    monkeypatch.setattr(precision, "bf16_native", lambda device: True)
    assert (load_policy("auto", "cpu").dtype, load_policy("auto", "cuda").dtype) == ("bf16", "bf16")
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)
    assert (load_policy("auto", "cpu").dtype, load_policy("auto", "cuda").dtype) == ("fp32", "fp16")
    assert load_policy("auto", "cpu").describe() == "fp32 on CPU (auto: the CPU has no native bf16)"


def test_an_explicit_dtype_wins_and_impossible_ones_are_user_errors(monkeypatch):
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)
    assert load_policy("fp32", "cpu").reason == "set by --dtype"
    assert load_policy("bf16", "cpu", where="eval.dtype").as_dict() == {
        "device": "cpu", "dtype": "bf16", "reason": "set by eval.dtype"}
    with pytest.raises(TunesmithError, match="eval.dtype: fp16 needs a GPU"):
        load_policy("fp16", "cpu", where="eval.dtype")
    with pytest.raises(TunesmithError, match="this GPU has no bf16"):
        load_policy("bf16", "cuda")
    with pytest.raises(TunesmithError, match="unknown dtype 'half'"):
        load_policy("half", "cpu")


def test_training_uses_the_same_bf16_rule():
    from tunesmith.train import hardware

    assert hardware.cpu_has_bf16() == precision.bf16_native("cpu")
    expected = "bf16" if precision.bf16_native("cpu") else "fp32"
    assert hardware.resolve_precision("auto", "full", "cpu").compute == load_policy("auto", "cpu").dtype == expected
