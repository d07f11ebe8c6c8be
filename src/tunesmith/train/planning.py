"""Size a run before it starts (estimate, gradient checkpointing) and set the estimate beside the measurement."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
from rich.table import Table

from tunesmith.config import TrainConfig
from tunesmith.train import methods
from tunesmith.train.attention import SHORT_MAX_WIDTH, attention_for
from tunesmith.train.batching import TrainData, plan_epoch, split_step
from tunesmith.train.estimate import COMPILED_STEP, Estimate, ModelShape, Workload, estimate, peak_memory_bytes
from tunesmith.train.hardware import Precision
from tunesmith.train.loop import FitResult

MEMORY_HEADROOM = 0.9  # turn gradient checkpointing on above this share of the memory there is
# torch.compile of each layer, measured on SmolLM2-135M LoRA bf16 on a 2-core CPU: ~35 s to compile
# (forward and backward, first step) with an empty inductor cache, then steps take ~0.76x as long.
COMPILE_COST_S = 40.0


@dataclass
class ResourcePlan:
    shape: ModelShape
    work: Workload
    settings: TrainConfig
    precision: Precision
    attention: str
    device: str
    checkpointing: bool = False
    compiled: bool = False

    @property
    def peak_attention(self) -> str:
        """The attention kernel of the widest batch, the one that sets peak memory."""
        return attention_for(self.work.largest_micro_width, self.device, self.attention)

    def estimate_for(self, model, checkpointing: bool | None = None) -> Estimate:
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
            compiled=self.compiled,
            reference_forward=self.settings.objective == "dpo" and self.settings.method != "full",
        )

    def choose_checkpointing(self, model) -> bool:
        """train.gradient_checkpointing, with 'auto' = on only when the estimate does not fit in memory."""
        wanted = self.settings.gradient_checkpointing
        if wanted == "auto":
            wanted = (
                self.estimate_for(model, checkpointing=False).peak_memory_gb
                > available_memory_gb(self.device) * MEMORY_HEADROOM
            )
        self.checkpointing = bool(wanted)
        return self.checkpointing

    def choose_compile(self, model, total_steps: int) -> bool:
        """train.compile, with 'auto' = on when the time saved over the run exceeds the compile time.

        Off with gradient checkpointing (recomputation under a compiled layer is not measured here) and
        with qlora (bitsandbytes' 4-bit kernels are not measured under torch.compile)."""
        wanted = self.settings.compile
        if wanted == "auto":
            eager = self.estimate_for(model).step_time_s
            pays = total_steps * eager * (1 - COMPILED_STEP) > COMPILE_COST_S
            wanted = not self.checkpointing and self.settings.method != "qlora" and pays
        self.compiled = bool(wanted)
        return self.compiled

    def describe(self, est: Estimate, model_name: str) -> str:
        p = self.precision
        weights = p.describe(self.settings.method)
        share = est.trainable_params / max(1, est.total_params)
        checkpointing = "on" if est.gradient_checkpointing else "off"
        compiled = " · compiled layers (the first step compiles)" if self.compiled else ""
        attention = self.attention
        if attention_for(1, self.device, self.attention) != self.attention:  # short batches switch kernel here
            attention = f"CPU short-row attention up to {SHORT_MAX_WIDTH} tokens, {self.attention} above"
        else:
            attention += " attention"
        busy = (
            f"\n[yellow]this machine is busy: other work takes ~{est.machine_busy:.0%} of its speed now; "
            "the estimate is for the machine to itself[/]"
            if est.machine_busy > 0.3
            else ""
        )
        return (
            "\n".join(
                [
                    f"[bold]train[/] {self.settings.method} on {model_name} · {p.compute} ({weights}) · "
                    f"{attention} · {self.device}, {torch.get_num_threads()} threads{compiled}",
                    f"trainable parameters: {est.trainable_params:,} of {est.total_params:,} ({share:.2%})",
                    f"estimate: peak memory {est.peak_memory_gb:.2f} GB · {est.step_time_s:.2f} s/step · "
                    f"{self.work.steps_per_epoch} steps/epoch = {_duration(est.epoch_time_s)} per epoch · "
                    f"~{est.tokens_per_s:.0f} tok/s · gradient checkpointing {checkpointing}",
                ]
            )
            + busy
        )


def plan_resources(
    model,
    data: TrainData,
    settings: TrainConfig,
    precision: Precision,
    attention: str,
    world: int,
    rank: int,
    device: str,
) -> ResourcePlan:
    return ResourcePlan(
        ModelShape.of(model.config), workload(data, settings, world, rank), settings, precision, attention, device
    )


def workload(data: TrainData, settings: TrainConfig, world: int, rank: int) -> Workload:
    """Batch sizes of epoch 0's plan: its first step holds the longest row (the memory peak)."""
    batches = plan_epoch(data.lengths, settings.batch_size * world, settings.seed, 0, min_rows=world)
    splits = [split_step(b, data.lengths, settings.grad_accum, rank, world) for b in batches]
    widest = max(splits[0], key=lambda micro: len(micro) * max(data.lengths[r] for r in micro))
    width = max(data.lengths[r] for r in widest)
    tokens = sum(data.lengths)
    return Workload(
        largest_micro_tokens=len(widest) * width,
        largest_micro_width=width,
        tokens_per_step=statistics.fmean(sum(data.lengths[r] for r in b) for b in batches) / world,
        mean_length=tokens / len(data.lengths),
        trained_fraction=sum(data.targets) / max(1, tokens),
        steps_per_epoch=len(batches),
        micro_per_step=statistics.fmean(len(s) for s in splits),
    )


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
