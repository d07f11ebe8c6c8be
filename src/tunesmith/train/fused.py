"""One matrix product for the projections that read the same input: q/k/v, and gate/up.

A decoder layer computes q, k and v (and gate and up) from the same hidden states with separate
products; at small hidden sizes each is too narrow to keep a CPU's matrix unit busy, and with LoRA
each adds two rank-r products of its own. `fuse_projections` gives each group one product:

- the frozen weights are concatenated once, and each module's own weight becomes a view into that
  tensor: parameter names, shapes and saved adapters stay exactly peft's (nothing to split on save);
  trainable weights (full fine-tuning) are concatenated at each call, which autograd splits back;
- the LoRA A matrices are concatenated at each call (they train, and the concatenation is
  differentiable), so the group's adapters take one product; the B products run as one
  block-diagonal product with each adapter's scaling folded in. Under LoRA dropout each module keeps
  its own mask: the A products then run one per module on its own dropped input.

The first member called computes the whole group and keeps the other members' slices until they
ask for them (the model's own forward is unchanged). Whatever the fused path does not cover (several
active adapters, DoRA, quantised or biased-LoRA layers) runs the module's own forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class _Group:
    """Projections that read the same input; computes all of them on the first member's call."""

    def __init__(self, members: list[nn.Module], frozen: torch.Tensor | None, frozen_bias: torch.Tensor | None):
        self.members = members
        self.sizes = [_base(m).out_features for m in members]
        self.frozen, self.frozen_bias = frozen, frozen_bias
        self.input: torch.Tensor | None = None
        self.pending: list[torch.Tensor | None] = [None] * len(members)

    def output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        if self.input is not x or self.pending[index] is None:
            self.pending = list(self.compute(x).split(self.sizes, dim=-1))
            self.input = x
        out, self.pending[index] = self.pending[index], None
        if all(p is None for p in self.pending):
            self.input = None  # nothing held between forward passes
        return out

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        bases = [_base(m) for m in self.members]
        weight = self.frozen if self.frozen is not None else torch.cat([b.weight for b in bases])
        bias = self.frozen_bias
        if bias is None and bases[0].bias is not None:
            bias = torch.cat([b.bias for b in bases])
        out = F.linear(x, weight, bias)
        adapter = _active_adapter(self.members[0])
        if adapter is None:
            return out
        a_weights = [m.lora_A[adapter].weight for m in self.members]
        dropouts = [m.lora_dropout[adapter] for m in self.members]
        if all(isinstance(d, nn.Identity) for d in dropouts):
            low = F.linear(x, torch.cat(a_weights))
        else:
            low = torch.cat([F.linear(d(x), a) for d, a in zip(dropouts, a_weights, strict=True)], dim=-1)
        up = torch.block_diag(*(m.lora_B[adapter].weight * m.scaling[adapter] for m in self.members))
        return out + F.linear(low, up)

    def fusable(self) -> bool:
        """False when the adapters are in a state the fused product does not compute."""
        adapters = {_active_adapter(m, strict=True) for m in self.members}
        return len(adapters) == 1 and "unfusable" not in adapters


def _base(module: nn.Module) -> nn.Linear:
    return getattr(module, "base_layer", module)


def _active_adapter(module: nn.Module, strict: bool = False) -> str | None:
    """The one plain LoRA adapter this module adds now; None when it adds none (plain layer, adapters
    disabled or merged); with `strict`, 'unfusable' for what the fused product does not cover."""
    if not hasattr(module, "lora_A") or module.disable_adapters or module.merged:
        return None
    active = [a for a in module.active_adapters if a in module.lora_A]
    if not active:
        return None
    if strict and (len(active) > 1 or active[0] in module.lora_variant or module.lora_B[active[0]].bias is not None):
        return "unfusable"
    return active[0]


def _fused_forward(self: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    group: _Group = self._tunesmith_group
    if args or kwargs or not group.fusable():
        return type(self).forward(self, x, *args, **kwargs)
    return group.output(self._tunesmith_index, x)


def fuse_projections(model: nn.Module) -> int:
    """Fuse every q/k/v and gate/up group of `model` in place; returns how many groups were fused.

    Call after adapters are attached and weights have their final dtype (a later `.to()` would
    copy the frozen views apart), and before torch.compile."""
    fused = 0
    for owner in list(model.modules()):
        for names in GROUPS:
            members = [getattr(owner, n, None) for n in names]
            if all(m is not None for m in members) and _can_fuse(members):
                _fuse(members)
                fused += 1
    return fused


def _can_fuse(members: list[nn.Module]) -> bool:
    bases = [_base(m) for m in members]
    if any(type(b) is not nn.Linear for b in bases):  # quantised or custom layers: leave them be
        return False
    if len({b.in_features for b in bases}) != 1 or len({b.bias is None for b in bases}) != 1:
        return False
    if len({(b.weight.dtype, b.weight.device, b.weight.requires_grad) for b in bases}) != 1:
        return False
    return all(getattr(b, "_tunesmith_group", None) is None for b in members)


def _fuse(members: list[nn.Module]) -> None:
    bases = [_base(m) for m in members]
    frozen = frozen_bias = None
    if not bases[0].weight.requires_grad:
        frozen = _share([b.weight for b in bases])
        if bases[0].bias is not None:
            frozen_bias = _share([b.bias for b in bases])
        for base, weight, bias in zip(bases, _views(frozen, bases), _views(frozen_bias, bases), strict=True):
            base.weight = nn.Parameter(weight, requires_grad=False)
            if bias is not None:
                base.bias = nn.Parameter(bias, requires_grad=False)
    group = _Group(members, frozen, frozen_bias)
    for index, member in enumerate(members):
        member._tunesmith_group = group
        member._tunesmith_index = index
        member.forward = _fused_forward.__get__(member)


def _share(tensors: list[torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([t.detach() for t in tensors])


def _views(joined: torch.Tensor | None, bases: list[nn.Linear]) -> list[torch.Tensor | None]:
    if joined is None:
        return [None] * len(bases)
    return list(joined.split([b.out_features for b in bases]))

