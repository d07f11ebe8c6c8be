"""One process or many (torchrun): accelerate sets up the process group and wraps the model in DDP or FSDP.

Everything the loop needs from the processes' world goes through `Cluster`, so the loop reads the
same on one CPU and on eight GPUs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from tunesmith.errors import TunesmithError
from tunesmith.train import checkpoint as ckpt


@dataclass
class Cluster:
    accelerator: object  # accelerate.Accelerator
    fsdp: bool

    @classmethod
    def create(cls, fsdp: bool = False) -> Cluster:
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

        plugin = None
        if fsdp:
            plugin = FullyShardedDataParallelPlugin(
                auto_wrap_policy="transformer_based_wrap",
                use_orig_params=True,
                state_dict_type="FULL_STATE_DICT",
            )
        # mixed precision stays ours (autocast in the loop), so several runs can share one process
        accelerator = Accelerator(mixed_precision="no", fsdp_plugin=plugin, cpu=not torch.cuda.is_available())
        sharded = accelerator.distributed_type == DistributedType.FSDP
        if fsdp and accelerator.num_processes > 1 and not sharded:
            raise TunesmithError(
                f"train.fsdp: accelerate shards with FSDP on GPUs only, and this run is on {accelerator.device.type}; "
                "set train.fsdp: false to train data-parallel (DDP) here"
            )
        return cls(accelerator, fsdp=sharded and accelerator.num_processes > 1)

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def prepare(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        """Move to the device and wrap for DDP/FSDP (a no-op wrapper on one process)."""
        if self.world == 1:
            model = model.to(self.device)
            for param, state in optimizer.state.items():  # a resume loaded it beside the weights, before the move
                state.update({k: v.to(param.device) for k, v in state.items() if torch.is_tensor(v)})
            return model, optimizer
        return self.accelerator.prepare(model, optimizer)

    def no_sync(self, model: nn.Module) -> AbstractContextManager:
        return self.accelerator.no_sync(model)

    def clip_grad_norm(self, model: nn.Module, params: list[nn.Parameter], max_norm: float) -> float:
        if self.fsdp:
            return float(model.clip_grad_norm_(max_norm))
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def sum(self, value: torch.Tensor) -> float:
        """Sum of a scalar over all processes."""
        if self.world == 1:
            return float(value)
        total = value.detach().clone().to(self.device)
        torch.distributed.all_reduce(total)
        return float(total)

    def barrier(self) -> None:
        if self.world > 1:
            self.accelerator.wait_for_everyone()

    def unwrap(self, model: nn.Module) -> nn.Module:
        return self.accelerator.unwrap_model(model) if self.world > 1 else model

    def trainable_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Trainable weights as full tensors on the CPU (gathered from all processes under FSDP)."""
        if not self.fsdp:
            return ckpt.trainable_state(self.unwrap(model))
        full = self.accelerator.get_state_dict(model)  # every process takes part; rank 0 gets the tensors
        trainable = {name for name, p in self.unwrap(model).named_parameters() if p.requires_grad}
        return {k: v.contiguous() for k, v in full.items() if _clean(k) in trainable}

    def optimizer_state(self, model: nn.Module, optimizer, names: dict[int, str]) -> dict[str, torch.Tensor]:
        if not self.fsdp:
            return ckpt.optimizer_tensors(optimizer, names)
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        full = FSDP.optim_state_dict(model, optimizer)  # {"state": {fqn: {...}}, "param_groups": [...]}
        return {
            f"{_clean(fqn)}::{key}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
            for fqn, values in full.get("state", {}).items()
            for key, v in values.items()
        }


def _clean(name: str) -> str:
    """Drop the wrapper prefixes FSDP adds to parameter names."""
    return name.replace("_fsdp_wrapped_module.", "").replace("_checkpoint_wrapped_module.", "")
