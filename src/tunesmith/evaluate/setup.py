"""Load a model for evaluation: the right dtype and device, and the optional similarity scorer."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from tunesmith.config import Config
from tunesmith.errors import TunesmithError
from tunesmith.loading import LoadedModel, load_for_use
from tunesmith.runs import RunDir


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def eval_dtype() -> torch.dtype:
    """bf16 where the hardware runs it fast (PERF_NOTES: 1.9x the fp32 generation throughput), else
    fp16 on an older GPU, else fp32. Log-likelihoods are still summed in fp32."""
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def load_model_for_eval(config: Config, run: RunDir, *, base_only: bool) -> tuple[LoadedModel, str]:
    """The base (`base_only`) or fine-tuned model of the run, on the best device; and 'device dtype'."""
    dtype = eval_dtype()
    if run.config.is_file():
        loaded = load_for_use(run.root, dtype=dtype, base_only=base_only)
    elif base_only:  # evaluating a model without a run (no training yet): the configured base model
        loaded = load_for_use(config.model, dtype=dtype, trust_remote_code=config.trust_remote_code)
    else:
        raise TunesmithError(f"{run.root} is not a run directory (no config.yaml): run `tunesmith train` first")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded.model.to(device)
    return loaded, f"{device} {str(dtype).removeprefix('torch.')}"


def maybe_similarity(wanted: bool | None):
    """A SemanticSimilarity scorer: always (True), never (False), or when installed (None)."""
    from tunesmith.evaluate.metrics.similarity import SemanticSimilarity

    if wanted is False or (wanted is None and not SemanticSimilarity.available()):
        return None
    return SemanticSimilarity()
