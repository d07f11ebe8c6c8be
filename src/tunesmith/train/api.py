"""`tunesmith.train(config)`: prepared data + base model -> fine-tuned weights in the run directory.

The config is unpacked here; everything below takes plain values.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from tunesmith import runs
from tunesmith.config import Config
from tunesmith.errors import TunesmithError
from tunesmith.faults import crash_point
from tunesmith.models import load_tokenizer, resolve_model
from tunesmith.runs import RunDir, atomic_write_text, space_for, tensor_bytes
from tunesmith.train import checkpoint as ckpt
from tunesmith.train import methods, record
from tunesmith.train.attention import kernel_choice
from tunesmith.train.batching import TrainData
from tunesmith.train.decisions import fused_decision
from tunesmith.train.distributed import Cluster
from tunesmith.train.evaluation import GenerationProbe, generation_probe
from tunesmith.train.fused import fuse_projections
from tunesmith.train.hardware import check_method, resolve_precision
from tunesmith.train.loop import FitResult, fit, total_steps
from tunesmith.train.output import save_output
from tunesmith.train.planning import comparison_table, measured, plan_resources
from tunesmith.train.record import Start


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


def train(
    config: Config, *, resume: bool | None = None, progress: bool = True, overwrite: bool = False
) -> TrainResult:
    """Fine-tune `config.model` on the prepared data; resumable, checkpointed, logged.

    One writer per run directory (runs.writing). `overwrite` replaces trained weights already there;
    without it a finished run is left as it is (same config) or refused (another config).
    """
    settings = config.train
    check_method(settings.method)
    cluster = Cluster.create(fsdp=settings.fsdp)
    precision = resolve_precision(settings.precision, settings.method, full_weights=settings.full_weights,
                                  processes=cluster.world)
    console = Console(quiet=not (progress and cluster.is_main), stderr=True, highlight=False)
    run = RunDir(Path(config.run_dir))
    with runs.writing(run.root, "tunesmith train") if cluster.is_main else contextlib.nullcontext():
        resolved = resolve_model(config.model)
        tokenizer = load_tokenizer(resolved.path, config.trust_remote_code)
        begin = preflight(config, tokenizer, resume=resume, overwrite=overwrite)  # before anything is written
        if begin.finished:
            console.print(f"{run.root} already holds this config's finished training (step {begin.from_step}); "
                          "nothing to train. To train it again: --overwrite, or a new run_dir")
            return _recorded(run)
        return _train(config, run, cluster, console, precision, resolved, tokenizer, begin, overwrite, progress)


def preflight(config: Config, tokenizer=None, *, resume: bool | None = None, overwrite: bool = False) -> Start:
    """How training would start in `config.run_dir`, decided (or refused) before anything is written."""
    from tunesmith.data.fingerprint import fingerprint

    if tokenizer is None:
        tokenizer = load_tokenizer(resolve_model(config.model).path, config.trust_remote_code)
    run = RunDir(Path(config.run_dir))
    return record.decide(config, run, fingerprint(config.data, tokenizer)["fingerprint"], resume, overwrite)


def _train(config, run, cluster, console, precision, resolved, tokenizer, begin: Start, overwrite, progress):
    settings = config.train
    prepared = _prepared(config, cluster)
    if cluster.is_main:
        _start_run_dir(config, run, begin.resuming, overwrite)
    cluster.barrier()
    if begin.resuming:
        console.print(f"resumed from step {begin.from_step} ({ckpt.latest_checkpoint(run.checkpoints)})")

    # the model, and what this config will cost on this hardware (each choice shown in the header)
    device = cluster.device.type
    attention = kernel_choice(settings.attention, settings.short_rows_max_width, device)[0]
    model = methods.load_base(resolved.path, settings.method, precision, attention, config.trust_remote_code)
    model = methods.prepare_for_training(model, settings.method, settings.lora, settings.seed, precision.autocast)
    fused = fuse_projections(model) if settings.fuse_projections and not settings.fsdp else 0
    data = TrainData.from_rows(prepared.train, settings.objective != "sft")  # sft on preference data: chosen only
    plan = plan_resources(model, data, settings, precision, cluster.world, cluster.rank, device)
    plan.decisions["fuse_projections"] = fused_decision(settings, fused)
    plan.choose_checkpointing(model)
    plan.choose_compile(model, total_steps(settings, plan.work.steps_per_epoch))
    plan.record_loss_head(model)
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
        resume=begin.resuming,
        progress=progress,
        fingerprint=record.resume_fingerprint(config, run),
        cluster=cluster,
        compiled=plan.compiled,
        probe=_probe(config, prepared, tokenizer),
    )
    output = run.adapter if settings.method in ("lora", "qlora") else run.model
    trained = [p for p in model.parameters() if p.requires_grad] if output == run.adapter else model.parameters()
    crash_point("final.save")
    with space_for(output, tensor_bytes(list(trained)), output.with_name(f".{output.name}.tmp")):
        save_output(cluster, result.wrapped, model, tokenizer, prepared.template, output)
    crash_point("final.saved")
    seen = measured(estimate, result, cluster.device.type, cluster.world)
    if cluster.is_main:
        console.print(comparison_table(estimate, seen))
        record.write(run, config, precision, plan.decisions.as_dict(), plan.speeds.as_dict(), estimate, seen, result,
                     cluster.world)
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


def _probe(config: Config, prepared, tokenizer) -> GenerationProbe | None:
    """train.eval_generate test examples answered at each evaluation, scored with the task's metric."""
    if not config.train.eval_generate:
        return None
    return generation_probe(prepared.test, prepared.template, tokenizer, size=config.train.eval_generate,
                            task_type=config.eval.task_type, extract=config.eval.extract,
                            max_new_tokens=config.eval.max_new_tokens, batch_size=config.eval.batch_size)  # fmt: skip


def _prepared(config: Config, cluster: Cluster):
    from tunesmith.data.prepare import ensure_prepared

    with cluster.accelerator.main_process_first():  # one process prepares, the others load it
        prepared = ensure_prepared(config)
    if len(prepared.train) == 0:
        raise TunesmithError(f"data.path: no training examples in {config.data.path}")
    return prepared


def _recorded(run: RunDir) -> TrainResult:
    """The result of the training already recorded in the run directory (train_info.json)."""
    info = json.loads((run.root / record.INFO_FILE).read_text(encoding="utf-8"))
    seen = info.get("measured") or {}
    return TrainResult(run.final_weights(), info.get("steps", 0), info.get("final_loss"), seen.get("tokens_per_s", 0.0),
                       seen.get("peak_memory_gb", 0.0), {"estimated": info.get("estimate"), "measured": seen},
                       run.train_log, info.get("eval_loss"))


def _start_run_dir(config: Config, run: RunDir, resuming: bool, overwrite: bool) -> None:
    """Record the config that produced these weights; a fresh start clears old checkpoints."""
    run.root.mkdir(parents=True, exist_ok=True)
    if overwrite:
        record.clear_trained(run)
    text = config.to_yaml()
    if not run.config.is_file() or (not resuming and run.config.read_text(encoding="utf-8") != text):
        atomic_write_text(run.config, text)
    if not resuming and run.checkpoints.exists():
        shutil.rmtree(run.checkpoints)
