"""Before the first step: how much memory and time this config will take on this hardware.

Memory = what the process holds now (weights, libraries) + gradients + AdamW moments + the
activations the backward pass keeps for the largest micro-batch + one block of logits.

Time per step = a fixed cost per layer and micro-batch (op dispatch, autograd, optimizer) + per
token: matmul FLOPs at this machine's matmul speed and the element-wise work (norms, rotary,
activations, casts, dropout) at its element-wise speed (train/speeds.py: probed once, cached). The
constants below turn those speeds into step times; they are fitted on the embedded model (how, and
how close the estimate comes, in bench/README.md and bench/bench_estimate.py). After training, the
estimate is printed beside what was measured.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import asdict, dataclass

import torch

from tunesmith.train.hardware import DTYPES, Precision
from tunesmith.train.loss import DEFAULT_CHUNK
from tunesmith.train.speeds import Speeds

ALLOCATOR_OVERHEAD = 1.6  # what glibc's heap holds beyond the tensors the backward pass keeps (fragmentation)
ELEMENTWISE_PASSES = 50  # effective passes over the kept activations per step (fwd + bwd, all small ops)
LAYER_OVERHEAD = 0.52  # GB of element-wise traffic that costs as much as one layer's fixed per-pass work
DROPOUT_PASSES = 62  # element-wise passes' worth of work per LoRA dropout element (random bits are dear)
COMPILED_STEP = 0.85  # step time with torch.compile'd layers over eager (fused element-wise work; bench/README.md)
FULL_BYTES_PER_PARAM = 250  # full fine-tuning: weight casts, weight gradients, AdamW, clipping, per parameter


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int

    @classmethod
    def of(cls, config) -> ModelShape:
        heads = config.num_attention_heads
        return cls(
            config.num_hidden_layers,
            config.hidden_size,
            config.intermediate_size,
            heads,
            getattr(config, "num_key_value_heads", None) or heads,
            config.vocab_size,
        )

    @property
    def kv_hidden(self) -> int:
        return self.hidden * self.kv_heads // self.heads

    @property
    def layer_matmul_params(self) -> int:
        h, i = self.hidden, self.intermediate
        return h * (h + 2 * self.kv_hidden) + h * h + 3 * h * i


@dataclass(frozen=True)
class Workload:
    """The data side: sizes of the batches this run will see."""

    largest_micro_tokens: int  # rows x longest row of the largest micro-batch (padded)
    largest_micro_width: int  # its longest row
    tokens_per_step: float  # mean non-padding tokens per optimizer step (this process)
    mean_length: float
    trained_fraction: float  # share of positions whose next token is trained
    steps_per_epoch: int
    micro_per_step: float = 1.0  # forward/backward passes per optimizer step (this process)
    shared_prefix: int = 0  # leading tokens every row shares, run once per micro-batch (train.share_prefix)
    computed_tokens_per_step: float | None = None  # tokens_per_step less the shared prefixes' repeats

    @property
    def computed(self) -> float:
        return self.tokens_per_step if self.computed_tokens_per_step is None else self.computed_tokens_per_step


@dataclass
class Estimate:
    trainable_params: int
    total_params: int
    peak_memory_gb: float
    step_time_s: float
    epoch_time_s: float
    tokens_per_s: float
    gradient_checkpointing: bool
    probe_matmul_gflops: float
    probe_elementwise_gbps: float
    step_fixed_s: float = 0.0  # the per-step part of step_time_s ...
    token_s: float = 0.0  # ... and the per-token part: step time = step_fixed_s + tokens * token_s
    compiled: bool = False  # layers torch.compile'd (step time scaled by COMPILED_STEP)

    def step_time_for(self, tokens: float) -> float:
        return self.step_fixed_s + tokens * self.token_s

    def as_dict(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def estimate(
    shape: ModelShape,
    work: Workload,
    *,
    method: str,
    precision: Precision,
    attention: str,
    trainable: int,
    total: int,
    lora_dropout: float,
    checkpointing: bool,
    device: str,
    speeds: Speeds,
    compiled: bool = False,
    reference_forward: bool = False,
    unmoved_bytes: int = 0,
) -> Estimate:
    """`speeds`: this hardware's (speeds.hardware_speeds); `reference_forward`: each step also runs a forward
    without gradients (DPO's reference, adapter off); `unmoved_bytes`: weights that will be on `device` but
    are not yet (a GPU run loads them on the CPU and moves them when training starts), counted as there."""
    memory = current_memory_bytes(device) + unmoved_bytes + optimizer_bytes(trainable, total, method, precision)
    memory += activation_bytes(shape, work, method, precision, attention, lora_dropout, checkpointing)
    matmul, elementwise = speeds.matmul_gflops * 1e9, speeds.elementwise_gbps * 1e9
    per_token = flops_per_token(shape, work, method, trainable, checkpointing, reference_forward) / matmul
    kept = kept_bytes_per_token(shape, work.largest_micro_width, method, precision, attention, lora_dropout)
    per_token += ELEMENTWISE_PASSES * shape.layers * kept * (2 if checkpointing else 1) / elementwise
    if method in ("lora", "qlora") and lora_dropout > 0:
        dropped = shape.layers * (6 * shape.hidden + shape.intermediate)  # inputs of the adapted layers
        per_token += DROPOUT_PASSES * dropped * DTYPES[precision.compute].itemsize / elementwise
    fixed = work.micro_per_step * shape.layers * LAYER_OVERHEAD * 1e9 / elementwise
    if method == "full":
        fixed += FULL_BYTES_PER_PARAM * total / elementwise
    if compiled:
        fixed, per_token = fixed * COMPILED_STEP, per_token * COMPILED_STEP
    per_token *= work.computed / work.tokens_per_step  # a shared prefix runs once per micro-batch
    step = fixed + work.tokens_per_step * per_token
    return Estimate(
        trainable_params=trainable,
        total_params=total,
        peak_memory_gb=memory / 1e9,
        step_time_s=step,
        epoch_time_s=step * work.steps_per_epoch,
        tokens_per_s=work.tokens_per_step / step,
        gradient_checkpointing=checkpointing,
        probe_matmul_gflops=matmul / 1e9,
        probe_elementwise_gbps=elementwise / 1e9,
        step_fixed_s=fixed,
        token_s=per_token,
        compiled=compiled,
    )


def optimizer_bytes(trainable: int, total: int, method: str, precision: Precision) -> int:
    """fp32 gradients + two AdamW moments, beside the weights already loaded. Full fine-tuning adds,
    under autocast, a low-precision copy of each fp32 weight; with master weights, the fp32 weights
    loaded become the masters and a bf16 copy of each is added (gradients reach the masters in fp32;
    a bf16 gradient lives only until it is added in)."""
    if precision.master_weights:
        return trainable * (2 + 4 + 8)
    cast_cache = total * 2 if precision.autocast and method == "full" else 0
    return trainable * (4 + 8) + cast_cache


def kept_bytes_per_token(
    shape: ModelShape, width: int, method: str, precision: Precision, attention: str, lora_dropout: float
) -> float:
    """Bytes one token leaves in one layer for the backward pass."""
    s = DTYPES[precision.compute].itemsize
    r = 4 if precision.frozen_weights == "fp32" else s  # the residual stream's dtype
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_hidden
    kept = 2 * (2 * r + 8) * h  # two RMSNorms: input, fp32 upcast and normalised copy
    kept += s * (h + 3 * (h + 2 * kv) + 2 * h)  # q/k/v in and out, rotary, attention, o_proj in
    kept += s * (h + 4 * i)  # MLP: input, gate, up, act, product
    if method in ("lora", "qlora") and lora_dropout > 0:
        kept += (6 * h + i) * (s + 1)  # dropped-out adapter inputs and their masks
    if attention == "eager":
        kept += shape.heads * width * (4 + s)  # softmax probabilities
    return kept


def activation_bytes(
    shape: ModelShape,
    work: Workload,
    method: str,
    precision: Precision,
    attention: str,
    lora_dropout: float,
    checkpointing: bool,
) -> float:
    """Tensors the backward pass keeps for the largest micro-batch, plus one block of logits."""
    s = DTYPES[precision.compute].itemsize
    per_token = kept_bytes_per_token(shape, work.largest_micro_width, method, precision, attention, lora_dropout)
    tokens = work.largest_micro_tokens
    layers = shape.layers * per_token * tokens
    if checkpointing:  # only each layer's input is kept, one layer is recomputed at a time
        r = 4 if precision.frozen_weights == "fp32" else s
        layers = shape.layers * shape.hidden * r * tokens + per_token * tokens
    trained = min(DEFAULT_CHUNK, max(1, int(tokens * work.trained_fraction)))
    logits = trained * shape.vocab * (4 + s) + tokens * shape.hidden * 4
    return (layers + logits) * ALLOCATOR_OVERHEAD


def flops_per_token(shape: ModelShape, work: Workload, method: str, trainable: int, checkpointing: bool,
                    reference_forward: bool = False) -> float:
    """Matmul FLOPs of one trained token: forward, backward to the activations, weight gradients (and a
    second forward for DPO's reference model)."""
    body = shape.layers * shape.layer_matmul_params
    head = shape.vocab * shape.hidden * work.trained_fraction
    attention = 2 * shape.layers * work.mean_length * shape.hidden  # causal QK^T and AV, forward
    forward = 2 * (body + head) + attention
    backward_inputs = forward
    if method == "full":
        weights = 2 * (body + head)
        extra = 0.0
    else:
        weights = 0.0
        extra = 6 * trainable  # the adapters: forward, input grad, weight grad
    recompute = forward if checkpointing else 0.0
    reference = forward if reference_forward else 0.0
    return forward + backward_inputs + weights + extra + recompute + reference


def current_memory_bytes(device: str) -> int:
    if device == "cuda":
        return torch.cuda.memory_allocated()
    return _rss_now()


def peak_memory_bytes(device: str) -> int:
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _rss_now() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:  # pragma: no cover - psutil is a dependency
        return peak_memory_bytes("cpu")
