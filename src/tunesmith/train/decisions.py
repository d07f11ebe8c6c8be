"""A run's performance decisions: each one's value, whether the config set it or tunesmith chose it, and why.

Printed in the training header and recorded in train_info.json under `decisions`. A setting left at
'auto' is decided by a stated rule or by the estimate (whose hardware speeds are shown beside it);
any other value is the config's. Adding a decision is one line where it is decided:
`decisions["name"] = chosen(settings.name, lambda: (value, "why"), "train.name")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tunesmith.precision import bf16_native
from tunesmith.train.attention import SHORT_ROW_KERNEL, attention_for, kernel_choice
from tunesmith.train.hardware import Precision
from tunesmith.train.shared_prefix import MIN_SHARED


@dataclass(frozen=True)
class Decision:
    value: Any
    source: Literal["config", "auto"]
    reason: str  # the rule or the figures behind an auto choice; the setting that made a config one

    def shown(self) -> str:
        value = ("on" if self.value else "off") if isinstance(self.value, bool) else self.value
        return f"{value} ({self.source}: {self.reason})"


def chosen(setting: Any, auto: Callable[[], tuple[Any, str]], key: str) -> Decision:
    """The config's value of `key` when it is not 'auto', else `auto()`'s (value, reason)."""
    if setting != "auto":
        return Decision(setting, "config", f"{key} is set")
    value, reason = auto()
    return Decision(value, "auto", reason)


class Decisions(dict[str, Decision]):
    """name -> Decision, in the order they were made."""

    def describe(self) -> str:
        lines = [f"  {name.replace('_', ' ')}: {decision.shown()}" for name, decision in self.items()]
        return "\n".join(["decisions (set train.<name> in the config to override an auto one):", *lines])

    def as_dict(self) -> dict[str, dict]:
        return {name: asdict(decision) for name, decision in self.items()}


def precision_decisions(
    requested: str, precision: Precision, method: str, device: str, full_weights: str = "auto"
) -> Decisions:
    """The compute dtype (train.precision) and the dtype frozen weights are stored in (its rule)."""
    native = "computes bf16 natively" if bf16_native(device) else "has no native bf16"
    compute = chosen(requested, lambda: (precision.compute, f"the {device.upper()} {native}"), "train.precision")
    cast = ", autocast" if precision.autocast else ""
    weights = Decision(f"{precision.frozen_weights}{cast}", "auto",
                       f"the rule for {method} computing in {precision.compute}; follows train.precision")
    decisions = Decisions(precision=compute, frozen_weights=weights)
    if method == "full":
        decisions.pop("frozen_weights")  # nothing is frozen: how the trained weights are held instead
        decisions["full_weights"] = chosen(
            full_weights, lambda: (precision.describe(method), "fp32 weights under autocast; bf16 weights with "
                                   "fp32 masters (bf16-master) stepped slower on a CPU"), "train.full_weights")
    return decisions


def attention_decision(setting: str, short_rows_max_width: int, device: str, widest: int) -> Decision:
    """train.attention; `widest`: the widest batch of this run, in tokens."""
    loaded, short_max = kernel_choice(setting, short_rows_max_width, device)
    peak = attention_for(widest, device, loaded, short_max)
    if setting != "auto":
        off_cpu = "; off a CPU it runs sdpa" if setting == "short_rows" and device != "cpu" else ""
        return Decision(setting, "config", f"train.attention is set{off_cpu}")
    if short_max == 0:
        why = "train.short_rows_max_width is 0" if device == "cpu" else f"the short-row kernel is for CPUs; {device}"
        return Decision(loaded, "auto", why)
    value = f"short_rows up to {short_max} tokens, {loaded} above"
    runs = "short_rows" if peak == SHORT_ROW_KERNEL else loaded
    return Decision(value, "auto", f"the CPU rule, train.short_rows_max_width; the widest batch here "
                                   f"({widest} tokens) runs {runs}")


def loss_head_decision(fused: bool, compiled: bool, objective: str = "sft") -> Decision:
    """How the output layer and the loss run (objective.fused_head_supported decides)."""
    if not fused:
        return Decision("full logits", "auto", "the model post-processes its logits, or its head is not a plain "
                                               "Linear")
    if objective != "sft":
        return Decision("logits at trained positions", "auto", "a plain Linear head; preference log-probs")
    kernel = "compiled" if compiled else "eager"
    return Decision(f"chunked at trained positions, {kernel} softmax", "auto",
                    "a plain Linear head; the softmax kernel follows compile")


def fused_decision(settings, groups: int) -> Decision:
    """train.fuse_projections: a setting, not an auto choice; says how many groups took one product."""
    if not settings.fuse_projections:
        return Decision(False, "config", "train.fuse_projections is false")
    if settings.fsdp:
        return Decision(False, "auto", "FSDP shards the weights, which fusing would share")
    return Decision(f"{groups} groups" if groups else False, "config",
                    "q/k/v and gate/up as one product each (train.fuse_projections)" if groups
                    else "no q/k/v or gate/up group of plain linear layers in this model")


def share_prefix_decision(settings, shared: int) -> Decision:
    """train.share_prefix, and how many tokens it saves per row."""
    if not settings.share_prefix:
        return Decision(False, "config", "train.share_prefix is false")
    if settings.attention == "eager":
        return Decision(False, "auto", "train.attention is eager; a shared prefix runs with sdpa or short_rows")
    if not shared:
        return Decision(False, "auto", f"the rows share fewer than {MIN_SHARED} untrained leading tokens, or are "
                                       "packed or preference pairs")
    return Decision(f"{shared} tokens", "config", f"the {shared} tokens every row begins with run once per "
                                                  "micro-batch (train.share_prefix)")
