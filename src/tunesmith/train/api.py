"""`tunesmith.train(config)`: prepared data + base model -> fine-tuned weights in the run directory.

The config is unpacked here; everything below takes plain values.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from tunesmith.config import Config
from tunesmith.errors import TunesmithError
from tunesmith.models import load_tokenizer, resolve_model
from tunesmith.runs import RunDir, atomic_write_text
from tunesmith.train import checkpoint as ckpt
from tunesmith.train import methods, provenance
from tunesmith.train.batching import TrainData
from tunesmith.train.distributed import Cluster
from tunesmith.train.hardware import check_method, resolve_precision
from tunesmith.train.loop import FitResult, fit, total_steps
from tunesmith.train.output import save_output
from tunesmith.train.planning import comparison_table, measured, plan_resources

# The kernel the model is loaded with; on a CPU short batches switch kernel (train/attention.py).
ATTENTION = "sdpa"


@dataclass
class TrainResult:
    output_dir: Path  # adapter/ or model/
    steps: int
    final_loss: float | None
    tokens_per_s: float
    peak_rss_gb: float
    estimate: dict = field(default_factory=dict)  # the estimate beside what was measured
    log_path: Path | None = None
    eval_loss: float | None = None


def train(config: Config, *, resume: bool | None = None, progress: bool = True) -> TrainResult:
    """Fine-tune `config.model` on the prepared data; resumable, checkpointed, logged."""
    settings = config.train
    check_method(settings.method)
    precision = resolve_precision(settings.precision, settings.method)
    cluster = Cluster.create(fsdp=settings.fsdp)
    console = Console(quiet=not (progress and cluster.is_main), stderr=True, highlight=False)
    run = RunDir(Path(config.run_dir))
    prepared = _prepared(config, cluster)
    resuming = _should_resume(settings.resume, resume, run.checkpoints)
    if cluster.is_main:
        _start_run_dir(config, run, resuming)
    cluster.barrier()

    # the model, and what this config will cost on this hardware
    resolved = resolve_model(config.model)
    tokenizer = load_tokenizer(resolved.path, config.trust_remote_code)
    model = methods.load_base(resolved.path, settings.method, precision, ATTENTION, config.trust_remote_code)
    model = methods.prepare_for_training(model, settings.method, settings.lora, settings.seed, precision.autocast)
    data = TrainData.from_rows(prepared.train, settings.objective != "sft")  # sft on preference data: chosen only
    plan = plan_resources(model, data, settings, precision, ATTENTION, cluster.world, cluster.rank, cluster.device.type)
    if plan.choose_checkpointing(model):
        methods.enable_checkpointing(model)
    if plan.choose_compile(model, total_steps(settings, plan.work.steps_per_epoch)):
        plan.compiled = methods.compile_layers(model)
    estimate = plan.estimate_for(model)
    console.print(plan.describe(estimate, config.model))

    result: FitResult = fit(
        model,
        data,
        prepared.test,
        settings,
        run.root,
        pad_id=tokenizer.pad_token_id,
        precision=precision,
        resume=resuming,
        progress=progress,
        fingerprint=provenance.resume_fingerprint(config, run),
        cluster=cluster,
        compiled=plan.compiled,
    )
    output = run.adapter if settings.method in ("lora", "qlora") else run.model
    save_output(cluster, result.wrapped, model, tokenizer, prepared.template, output)
    seen = measured(estimate, result, cluster.device.type, cluster.world)
    if cluster.is_main:
        console.print(comparison_table(estimate, seen))
        provenance.write(run, config, precision, ATTENTION, estimate, seen, result, cluster.world)
    cluster.barrier()
    return TrainResult(
        output,
        result.steps,
        result.final_loss,
        result.tokens_per_s,
        seen["peak_memory_gb"],
        {"estimated": estimate.as_dict(), "measured": seen},
        run.train_log,
        result.eval_loss,
    )


def _prepared(config: Config, cluster: Cluster):
    from tunesmith.data.prepare import ensure_prepared

    with cluster.accelerator.main_process_first():  # one process prepares, the others load it
        prepared = ensure_prepared(config)
    if len(prepared.train) == 0:
        raise TunesmithError(f"data.path: no training examples in {config.data.path}")
    return prepared


def _should_resume(setting: str, requested: bool | None, checkpoints: Path) -> bool:
    """--resume / --no-resume win over train.resume; 'auto' resumes when a checkpoint exists."""
    exists = ckpt.latest_checkpoint(checkpoints) is not None
    wanted = {"auto": exists, "always": True, "never": False}[setting] if requested is None else requested
    if wanted and not exists:
        flag = "--resume" if requested else "train.resume: always"
        raise TunesmithError(f"{flag}: no checkpoint in {checkpoints} to resume from; run without it to start training")
    return wanted


def _start_run_dir(config: Config, run: RunDir, resuming: bool) -> None:
    """Record the config that produced these weights; a fresh start clears old checkpoints."""
    run.root.mkdir(parents=True, exist_ok=True)
    text = config.to_yaml()
    if not run.config.is_file() or (not resuming and run.config.read_text(encoding="utf-8") != text):
        atomic_write_text(run.config, text)
    if not resuming and run.checkpoints.exists():
        shutil.rmtree(run.checkpoints)
