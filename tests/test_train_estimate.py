"""The memory/time estimate: its parts scale the way the hardware does; the comparison reads right."""

from dataclasses import replace

import pytest

from tunesmith.config import TrainConfig
from tunesmith.train import estimate as est
from tunesmith.train.batching import TrainData
from tunesmith.train.decisions import Decision
from tunesmith.train.estimate import ModelShape, Workload
from tunesmith.train.hardware import Precision
from tunesmith.train.loop import FitResult
from tunesmith.train.planning import comparison_table, measured, workload
from tunesmith.train.speeds import Speeds

SMOLLM = ModelShape(layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, vocab=49152)
LORA_BF16 = Precision("bf16", "bf16", autocast=True)
FULL_BF16 = Precision("bf16", "fp32", autocast=True)
SPEEDS = Speeds(2000.0, 40.0, "2025-01-01", "cached", "/nowhere/hardware.json")


def _work(tokens=640, width=80, micro=1.0):
    return Workload(
        largest_micro_tokens=tokens,
        largest_micro_width=width,
        tokens_per_step=tokens,
        mean_length=width,
        trained_fraction=0.5,
        steps_per_epoch=10,
        micro_per_step=micro,
    )


def _estimate(monkeypatch, work, method="lora", precision=LORA_BF16, **kw):
    monkeypatch.setattr(est, "current_memory_bytes", lambda device: 1_000_000_000)
    args = dict(
        method=method,
        precision=precision,
        attention="sdpa",
        trainable=5_000_000,
        total=135_000_000,
        lora_dropout=0.0,
        checkpointing=False,
        device="cpu",
        speeds=SPEEDS,
    )
    return est.estimate(SMOLLM, work, **{**args, **kw})


def test_activation_memory_grows_with_tokens_and_checkpointing_cuts_it():
    one = est.activation_bytes(SMOLLM, _work(640), "lora", LORA_BF16, "sdpa", 0.0, False)
    two = est.activation_bytes(SMOLLM, _work(1280), "lora", LORA_BF16, "sdpa", 0.0, False)
    saved = est.activation_bytes(SMOLLM, _work(1280), "lora", LORA_BF16, "sdpa", 0.0, True)
    assert two == pytest.approx(2 * one, rel=0.1)
    assert saved < two / 5
    eager = est.activation_bytes(SMOLLM, _work(1280, width=512), "lora", LORA_BF16, "eager", 0.0, False)
    assert eager > est.activation_bytes(SMOLLM, _work(1280, width=512), "lora", LORA_BF16, "sdpa", 0.0, False)


def test_full_fine_tuning_needs_more_flops_and_optimizer_memory_than_lora():
    work = _work()
    assert est.flops_per_token(SMOLLM, work, "full", 135e6, False) > est.flops_per_token(
        SMOLLM, work, "lora", 5e6, False
    )
    assert est.optimizer_bytes(135_000_000, 135_000_000, "full", FULL_BF16) > 12 * 135_000_000
    assert est.optimizer_bytes(5_000_000, 135_000_000, "lora", LORA_BF16) == 12 * 5_000_000


def test_step_time_is_a_fixed_part_plus_a_per_token_part(monkeypatch):
    small = _estimate(monkeypatch, _work(640))
    large = _estimate(monkeypatch, _work(1280))
    assert small.step_time_s == pytest.approx(small.step_fixed_s + 640 * small.token_s)
    assert large.step_time_s - small.step_time_s == pytest.approx(640 * small.token_s, rel=0.05)
    assert small.tokens_per_s == pytest.approx(640 / small.step_time_s)
    assert small.epoch_time_s == pytest.approx(10 * small.step_time_s)
    assert _estimate(monkeypatch, _work(), lora_dropout=0.05).step_time_s > small.step_time_s
    assert small.peak_memory_gb > 1.0 + 12 * 5e6 / 1e9


def test_measured_uses_the_median_step_and_compares_like_with_like(monkeypatch):
    estimate = _estimate(monkeypatch, _work(640))
    times = [9.0, 1.0, 1.1, 30.0, 1.2]  # a warm-up step and one step slowed by a neighbour
    result = FitResult(5, 1.0, None, 640 * 4 / sum(times[1:]), step_times=times, step_tokens=[640] * 5)
    seen = measured(estimate, result, "cpu", world=1)
    assert seen["step_time_s"] == pytest.approx(1.15)
    assert seen["estimated_step_time_s"] == pytest.approx(estimate.step_time_s, rel=1e-3)
    rendered = comparison_table(estimate, seen)
    assert [c.header for c in rendered.columns] == ["", "estimated", "measured", "off by"]


def test_compile_is_chosen_only_when_the_run_pays_back_its_compile_time(monkeypatch):
    from tunesmith.config import TrainConfig
    from tunesmith.train.planning import COMPILE_COST_S, ResourcePlan

    compiled = _estimate(monkeypatch, _work(), compiled=True)
    eager = _estimate(monkeypatch, _work())
    assert compiled.step_time_s == pytest.approx(est.COMPILED_STEP * eager.step_time_s)
    monkeypatch.setattr("tunesmith.train.methods.count_parameters", lambda model: (5_000_000, 135_000_000))
    layers_compiled = []

    def plan(steps, checkpointing=False, **train):
        p = ResourcePlan(SMOLLM, _work(), TrainConfig(**train), LORA_BF16, "cpu", SPEEDS, checkpointing=checkpointing)
        on = p.choose_compile(None, steps, compile_layers=lambda model: not layers_compiled.append(model))
        return on, p.decisions["compile"]

    # savings per step = (1 - COMPILED_STEP) x eager step time; break-even at COMPILE_COST_S
    step = ResourcePlan(SMOLLM, _work(), TrainConfig(), LORA_BF16, "cpu", SPEEDS).estimate_for(None).step_time_s
    break_even = COMPILE_COST_S / ((1 - est.COMPILED_STEP) * step)
    on, why = plan(int(break_even * 1.2))
    assert on and why.source == "auto" and f"~{int(break_even * 1.2)} steps ×" in why.reason
    assert layers_compiled == [None]  # the plan compiles the layers when it chooses to
    off, why = plan(int(break_even * 0.8))
    assert not off and why.value is False and f"≤ {COMPILE_COST_S:.0f} s compile" in why.reason
    assert plan(10_000, compile=False) == (False, Decision(False, "config", "train.compile is set"))
    assert plan(1, compile=True) == (True, Decision(True, "config", "train.compile is set"))
    off, why = plan(10_000, checkpointing=True)
    assert not off and why.reason.startswith("off with gradient checkpointing")


def test_a_gpu_plan_counts_the_weights_it_has_not_moved_there_yet(monkeypatch):
    """A GPU run plans while its weights are still on the CPU: the GPU's allocated memory misses them."""
    from tiny import tiny_model
    from tunesmith.config import TrainConfig
    from tunesmith.train.planning import ResourcePlan

    model = tiny_model()
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    monkeypatch.setattr(est, "current_memory_bytes", lambda device: 0)

    def peak(device):
        return ResourcePlan(SMOLLM, _work(), TrainConfig(), LORA_BF16, device, SPEEDS).estimate_for(model)

    assert peak("cuda").peak_memory_gb - peak("cpu").peak_memory_gb == pytest.approx(weights / 1e9)


def test_a_shared_prefix_is_counted_once_per_micro_batch(monkeypatch):
    plain = _estimate(monkeypatch, _work(640))
    shared = _estimate(monkeypatch, replace(_work(640), shared_prefix=20, computed_tokens_per_step=640 - 7 * 20))
    assert shared.token_s == pytest.approx(plain.token_s * 500 / 640)  # tokens counted, 500 of them computed
    assert shared.step_fixed_s == plain.step_fixed_s
    assert shared.tokens_per_s == pytest.approx(640 / shared.step_time_s) and shared.tokens_per_s > plain.tokens_per_s


@pytest.mark.parametrize("share", [True, False])
def test_the_workload_finds_the_prefix_every_row_shares(share):
    prefix = list(range(5, 15))  # 10 tokens, untrained in every row
    rows = [{"input_ids": prefix + [20 + i] * (4 + i % 3), "labels": [-100] * 11 + [20 + i] * (3 + i % 3)}
            for i in range(16)]
    data = TrainData.from_rows(rows)
    work = workload(data, TrainConfig(batch_size=8, share_prefix=share), world=1, rank=0)
    assert work.shared_prefix == (10 if share else 0)
    assert work.computed == work.tokens_per_step - (7 * 10 if share else 0)  # 8 rows per micro-batch, 1 per step
    assert work.largest_micro_tokens == 8 * work.largest_micro_width - (70 if share else 0)
