"""Load a model for evaluation under the one load policy, and the optional similarity scorer."""

from __future__ import annotations

from tunesmith.config import Config
from tunesmith.errors import TunesmithError
from tunesmith.loading import LoadedModel, load_for_use
from tunesmith.precision import LoadPolicy, load_policy
from tunesmith.runs import RunDir

GREEDY = "greedy"  # how eval decodes: temperature 0, the engine's argmax


def eval_policy(config: Config) -> LoadPolicy:
    """`eval.dtype` on this machine's device (precision.load_policy)."""
    return load_policy(config.eval.dtype, where="eval.dtype")


def load_model_for_eval(config: Config, run: RunDir, *, base_only: bool) -> LoadedModel:
    """The base (`base_only`) or fine-tuned model of the run (adapter merged), under `eval.dtype`."""
    dtype = config.eval.dtype
    if run.config.is_file():
        return load_for_use(run.root, dtype=dtype, base_only=base_only)
    if base_only:  # evaluating a model without a run (no training yet): the configured base model
        return load_for_use(config.model, dtype=dtype, trust_remote_code=config.trust_remote_code)
    raise TunesmithError(f"{run.root} is not a run directory (no config.yaml): run `tunesmith train` first")


def generation_info(policy: LoadPolicy, max_new_tokens: int, batch_size: int) -> dict:
    """What eval's numbers hold for: written to eval/compare.json and shown in the report."""
    return {
        "device": policy.device, "dtype": policy.dtype, "dtype_reason": policy.reason, "decoding": GREEDY,
        "max_new_tokens": max_new_tokens, "batch_size": batch_size, "engine": "tunesmith.engine",
        "summary": f"predictions generated in {policy.dtype} on {policy.device.upper()}, {GREEDY}, "
                   f"max_new_tokens {max_new_tokens}",
    }


def maybe_similarity(wanted: bool | None):
    """A SemanticSimilarity scorer: always (True), never (False), or when installed (None)."""
    from tunesmith.evaluate.metrics.similarity import SemanticSimilarity

    if wanted is False or (wanted is None and not SemanticSimilarity.available()):
        return None
    return SemanticSimilarity()
