"""Size a run before it starts (estimate, gradient checkpointing, compile), show each decision, and set the
estimate beside the measurement afterwards."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from rich.table import Table

from tunesmith.config import TrainConfig
from tunesmith.train import methods
from tunesmith.train.attention import attention_for, kernel_choice
from tunesmith.train.batching import TrainData, plan_epoch, split_step
from tunesmith.train.decisions import (
    Decision,
    Decisions,
    attention_decision,
    chosen,
    loss_head_decision,
    precision_decisions,
    share_prefix_decision,
)
from tunesmith.train.estimate import COMPILED_STEP, Estimate, ModelShape, Workload, estimate, peak_memory_bytes
from tunesmith.train.hardware import Precision
from tunesmith.train.loop import FitResult
from tunesmith.train.objective import fused_head_supported
from tunesmith.train.shared_prefix import common_prefix
from tunesmith.train.speeds import Speeds, hardware_speeds

MEMORY_HEADROOM = 0.9  # gradient checkpointing goes on when the estimate needs more of the available memory
COMPILE_COST_S = 60.0  # compiling the layers, forward and backward, with an empty inductor cache (bench/README.md)


@dataclass
class ResourcePlan:
    shape: ModelShape
    work: Workload
    settings: TrainConfig
    precision: Precision
    device: str
    speeds: Speeds
    checkpointing: bool = False
    compiled: bool = False
    decisions: Decisions = field(default_factory=Decisions)

    @property
    def kernels(self) -> tuple[str, int]:
        """(the kernel the model is loaded with, the widest batch that runs the CPU short-row kernel)."""
        return kernel_choice(self.settings.attention, self.settings.short_rows_max_width, self.device)

    @property
    def peak_attention(self) -> str:
        """The attention kernel of the widest batch, the one that sets peak memory."""
        return attention_for(self.work.largest_micro_width, self.device, *self.kernels)

    def estimate_for(self, model, checkpointing: bool | None = None, compiled: bool | None = None) -> Estimate:
        trainable, total = methods.count_parameters(model)
        return estimate(
            self.shape,
            self.work,
            method=self.settings.method,
            precision=self.precision,
            attention=self.peak_attention,
            trainable=trainable,
            total=total,
            lora_dropout=self.settings.lora.dropout,
            checkpointing=self.checkpointing if checkpointing is None else checkpointing,
            device=self.device,
            speeds=self.speeds,
            compiled=self.compiled if compiled is None else compiled,
            reference_forward=self.settings.objective == "dpo" and self.settings.method != "full",
            unmoved_bytes=methods.bytes_off_device(model, self.device),
        )

    def choose_checkpointing(self, model, enable: Callable = methods.enable_checkpointing) -> bool:
        """train.gradient_checkpointing, with 'auto' = on only when the estimate does not fit in memory."""

        def fits():
            need = self.estimate_for(model, checkpointing=False, compiled=False).peak_memory_gb
            free = available_memory_gb(self.device)
            on = need > free * MEMORY_HEADROOM
            return on, f"estimate {need:.2f} GB {'>' if on else '≤'} {MEMORY_HEADROOM:.0%} of {free:.1f} GB available"

        decision = chosen(self.settings.gradient_checkpointing, fits, "train.gradient_checkpointing")
        self.decisions["gradient_checkpointing"] = decision
        self.checkpointing = bool(decision.value)
        if self.checkpointing:
            enable(model)
        return self.checkpointing

    def choose_compile(self, model, total_steps: int, compile_layers: Callable = methods.compile_layers) -> bool:
        """train.compile, with 'auto' = on when the time saved over the run exceeds the compile time; then
        compiles the layers."""
        decision = chosen(self.settings.compile, lambda: self._compile_pays(model, total_steps), "train.compile")
        if decision.value and not compile_layers(model):
            decision = Decision(False, decision.source, "this model's decoder layers were not found to compile")
        self.decisions["compile"] = decision
        self.compiled = bool(decision.value)
        return self.compiled

    def _compile_pays(self, model, total_steps: int) -> tuple[bool, str]:
        if self.checkpointing:  # recomputation under a compiled layer is not measured
            return False, "off with gradient checkpointing (not measured together)"
        if self.settings.method == "qlora":  # bitsandbytes' 4-bit kernels are not measured under torch.compile
            return False, "off for qlora (4-bit kernels not measured compiled)"
        saved = self.estimate_for(model, compiled=False).step_time_s * (1 - COMPILED_STEP)
        pays = total_steps * saved > COMPILE_COST_S
        return pays, (f"~{total_steps} steps × {saved:.2f} s saved {'>' if pays else '≤'} {COMPILE_COST_S:.0f} s "
                      f"compile; a compiled step ≈ {COMPILED_STEP:.2f} × eager")

    def record_loss_head(self, model) -> None:
        fused = fused_head_supported(methods.causal_lm(model))
        self.decisions["loss_head"] = loss_head_decision(fused, self.compiled, self.settings.objective)

    def describe(self, est: Estimate, model_name: str) -> str:
        share = est.trainable_params / max(1, est.total_params)
        return "\n".join(
            [
                f"[bold]train[/] {self.settings.method} on {model_name} · {self.device}, "
                f"{torch.get_num_threads()} threads" + (" · the first step compiles" if self.compiled else ""),
                f"trainable parameters: {est.trainable_params:,} of {est.total_params:,} ({share:.2%})",
                self.decisions.describe(),
                self.speeds.describe(),
                f"estimate: peak memory {est.peak_memory_gb:.2f} GB · {est.step_time_s:.2f} s/step · "
                f"{self.work.steps_per_epoch} steps/epoch = {_duration(est.epoch_time_s)} per epoch · "
                f"~{est.tokens_per_s:.0f} tok/s",
            ]
        )


def plan_resources(
    model, data: TrainData, settings: TrainConfig, precision: Precision, world: int, rank: int, device: str
) -> ResourcePlan:
    """The plan of this run, with this hardware's speeds (cached, or probed now) and the decisions that
    need no estimate: precision, frozen weights' dtype, attention."""
    shape, work = ModelShape.of(model.config), workload(data, settings, world, rank)
    speeds = hardware_speeds(shape.hidden, shape.intermediate, precision.compute, device, settings.remeasure_hardware)
    decisions = precision_decisions(settings.precision, precision, settings.method, device, settings.full_weights)
    decisions["attention"] = attention_decision(
        settings.attention, settings.short_rows_max_width, device, work.largest_micro_width
    )
    decisions["share_prefix"] = share_prefix_decision(settings, work.shared_prefix)
    return ResourcePlan(shape, work, settings, precision, device, speeds, decisions=decisions)


def workload(data: TrainData, settings: TrainConfig, world: int, rank: int) -> Workload:
    """Batch sizes of epoch 0's plan: its first step holds the longest row (the memory peak)."""
    batches = plan_epoch(data.lengths, settings.batch_size * world, settings.seed, 0, min_rows=world)
    splits = [split_step(b, data.lengths, settings.grad_accum, rank, world) for b in batches]
    widest = max(splits[0], key=lambda micro: len(micro) * max(data.lengths[r] for r in micro))
    width = max(data.lengths[r] for r in widest)
    tokens = sum(data.lengths)
    shared = prefix_shared(data, settings)

    def computed(micro: list[int]) -> int:  # the micro-batch's tokens, its shared prefix counted once
        return sum(data.lengths[r] for r in micro) - shared * (len(micro) - 1)

    return Workload(
        largest_micro_tokens=len(widest) * width - shared * (len(widest) - 1),
        largest_micro_width=width,
        tokens_per_step=statistics.fmean(sum(data.lengths[r] for r in b) for b in batches) / world,
        shared_prefix=shared,
        computed_tokens_per_step=statistics.fmean(sum(map(computed, s)) for s in splits),
        mean_length=tokens / len(data.lengths),
        trained_fraction=sum(data.targets) / max(1, tokens),
        steps_per_epoch=len(batches),
        micro_per_step=statistics.fmean(len(s) for s in splits),
    )


def prefix_shared(data: TrainData, settings: TrainConfig) -> int:
    """Leading tokens every row shares and trains none of, run once per micro-batch (train.share_prefix);
    0 where sharing is off or does not apply (preference pairs, packed rows)."""
    if not settings.share_prefix or settings.attention == "eager" or settings.objective != "sft" or data.preference:
        return 0
    if data.rows and "position_ids" in data.rows[0]:
        return 0
    return common_prefix(data.rows)


def measured(est: Estimate, result: FitResult, device: str, world: int) -> dict:
    """What the run took, beside the estimate for the same steps.

    Step time is the median over steps (the first, a warm-up, left out): a neighbour's burst of
    work on a shared machine stretches a few steps, not the typical one. On a CPU, `cpu_share` is
    the share of its threads' time this process was given while stepping; below 1, other work
    took the rest, and `step_cpu_time_s` (CPU seconds per thread) is what a step costs the machine.
    """
    steps = list(zip(result.step_times, result.step_tokens, result.step_cpu_times or result.step_times, strict=True))
    steps = steps[1:] or steps
    threads = torch.get_num_threads() if device == "cpu" else 1
    wall = sum(t for t, _, _ in steps)
    seen = {
        "peak_memory_gb": round(peak_memory_bytes(device) / 1e9, 3),
        "step_time_s": round(statistics.median(t for t, _, _ in steps), 4) if steps else 0.0,
        "estimated_step_time_s": round(statistics.median(est.step_time_for(n / world) for _, n, _ in steps), 4)
        if steps
        else 0.0,
        "tokens_per_s": round(result.tokens_per_s / world, 2),
        "steps_timed": len(steps),
    }
    if device == "cpu" and steps:
        seen["step_cpu_time_s"] = round(statistics.median(c / threads for _, _, c in steps), 4)
        seen["cpu_share"] = round(min(1.0, sum(c for _, _, c in steps) / max(1e-9, wall * threads)), 3)
    return seen


def comparison_table(est: Estimate, seen: dict) -> Table:
    share = seen.get("cpu_share", 1.0)
    caption = (
        f"other work took {1 - share:.0%} of this CPU while training: wall-clock step times are longer than "
        "the machine's own; CPU time per thread shows those"
        if share < 0.8
        else None
    )
    table = Table(title="estimate vs measured", title_justify="left", caption=caption, caption_justify="left")
    for column in ("", "estimated", "measured", "off by"):
        table.add_column(column, justify="right" if column else "left")
    rows = [
        ("peak memory (GB)", est.peak_memory_gb, seen["peak_memory_gb"]),
        ("step time, median (s)", seen["estimated_step_time_s"], seen["step_time_s"]),
    ]
    if share < 0.8:
        rows.append(("step time, CPU s per thread", seen["estimated_step_time_s"], seen["step_cpu_time_s"]))
    rows.append(("tokens/s per process", est.tokens_per_s, seen["tokens_per_s"]))
    for name, guess, real in rows:
        off = f"{(guess - real) / real:+.0%}" if real else "-"
        table.add_row(name, f"{guess:,.2f}", f"{real:,.2f}", off)
    return table


def available_memory_gb(device: str) -> float:
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        return (free + torch.cuda.memory_allocated()) / 1e9
    import psutil

    return (psutil.virtual_memory().available + psutil.Process().memory_info().rss) / 1e9


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
