"""The training loop: one readable step (lr -> forward/backward -> clip -> step -> log), on accelerate.

`fit` takes plain values (a prepared model, token rows, the train settings, a run folder) so that it
can be tested with hand-built rows; `tunesmith.train.train` feeds it from a config.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tunesmith.config import TrainConfig
from tunesmith.train import checkpoint as ckpt
from tunesmith.train.attention import use_attention
from tunesmith.train.batching import Batch, StepPlan, TrainData, collate, split_step
from tunesmith.train.checkpoint import Progress, restore, save_best, save_checkpoint
from tunesmith.train.distributed import Cluster
from tunesmith.train.evaluation import GenerationProbe, eval_loss
from tunesmith.train.hardware import DTYPES, Precision
from tunesmith.train.masters import MasterWeights
from tunesmith.train.methods import causal_lm
from tunesmith.train.neftune import add_neftune
from tunesmith.train.objective import make_objective
from tunesmith.train.observe import ProgressBar, Trackers, TrainLog
from tunesmith.train.preference import PreferenceObjective, attach_reference, objective_needs_reference, stats_record
from tunesmith.train.schedule import learning_rate, warmup_steps


@dataclass
class FitResult:
    steps: int
    final_loss: float | None
    eval_loss: float | None
    tokens_per_s: float  # non-padding tokens through forward+backward per second of training steps
    step_times: list[float] = field(default_factory=list)  # seconds per step measured in this process
    step_tokens: list[int] = field(default_factory=list)  # non-padding tokens of those steps (all processes)
    step_cpu_times: list[float] = field(default_factory=list)  # CPU seconds this process used in each step
    progress: Progress = field(default_factory=Progress)
    resumed_from: int | None = None
    wrapped: nn.Module | None = None  # the model as trained (DDP/FSDP-wrapped under torchrun)


def total_steps(settings: TrainConfig, steps_per_epoch: int) -> int:
    if settings.max_steps is not None:
        return settings.max_steps
    return max(1, math.ceil(settings.epochs * steps_per_epoch))


def fit(
    model: nn.Module,
    train_rows,
    eval_rows,
    settings: TrainConfig,
    run_dir: Path,
    *,
    pad_id: int,
    precision: Precision,
    resume: bool = False,
    progress: bool = True,
    fingerprint: dict[str, Any] | None = None,
    cluster: Cluster | None = None,
    compiled: bool = False,
    probe: GenerationProbe | None = None,
) -> FitResult:
    """Train `model` (adapters attached, or all weights trainable) on `train_rows`; checkpoints in run_dir.
    `compiled`: the layers were compiled (methods.compile_layers); the loss then compiles its kernel too.
    `probe`: answers a few test examples at each evaluation (train.eval_generate), logged as eval_<metric>."""
    cluster = cluster or Cluster.create(fsdp=settings.fsdp)
    pairs = settings.objective != "sft"
    data = train_rows if isinstance(train_rows, TrainData) else TrainData.from_rows(train_rows, pairs)
    eval_data = TrainData.from_rows(eval_rows, pairs) if eval_rows is not None and len(eval_rows) else None
    step_batch = settings.batch_size * cluster.world
    plan = StepPlan(data, step_batch, settings.seed, cluster.world)
    total = total_steps(settings, plan.steps_per_epoch)
    warmup = warmup_steps(total, settings.warmup_ratio)
    folder = run_dir / "checkpoints"
    log = TrainLog(run_dir / "train_log.jsonl")
    fingerprint = {"steps": total, "world": cluster.world, **(fingerprint or {})}
    if settings.objective != "sft":
        fingerprint["objective"] = settings.objective

    noise = add_neftune(model, settings.neftune_alpha) if settings.neftune_alpha else None
    objective = make_objective(model, settings, cluster.device.type, compiled)
    preference = isinstance(objective, PreferenceObjective)
    params = [p for p in objective.parameters() if p.requires_grad]
    names = ckpt.parameter_names(objective)
    masters = None
    if precision.master_weights:  # bf16 weights; AdamW, clipping and checkpoints on their fp32 masters
        masters = MasterWeights(objective.to(cluster.device), names, DTYPES[precision.frozen_weights])
        params, names = masters.params, masters.names
    # fused: one kernel for all of AdamW's element-wise math (~4x the default on a CPU, 135M weights)
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay, fused=True)
    state, resumed_from = Progress(), None
    start = ckpt.latest_checkpoint(folder) if resume else None
    if start is not None:
        state = restore(start, objective, optimizer, names, fingerprint, cluster.rank, masters)
        resumed_from = state.step
    else:
        torch.manual_seed(settings.seed + cluster.rank)  # dropout; adapter init was seeded before
    if cluster.is_main:
        ckpt.remove_stale(folder)
        log.restart_at(state.step)
    objective, optimizer = cluster.prepare(objective, optimizer)
    scaler = torch.amp.GradScaler("cuda") if precision.compute == "fp16" and precision.autocast else None
    autocast = torch.autocast(cluster.device.type, dtype=DTYPES[precision.compute], enabled=precision.autocast)
    if preference and objective_needs_reference(cluster.unwrap(objective)):
        attach_reference(cluster, objective, data, eval_data, run_dir, start is not None, settings, pad_id, autocast)
    trackers = Trackers(settings.report_to if cluster.is_main else "none", run_dir, settings.model_dump(mode="json"))
    objective.train()

    result = FitResult(0, None, None, 0.0, progress=state, resumed_from=resumed_from)
    if state.step >= total and cluster.is_main and progress:
        print(f"{start} is the end of this run (step {state.step} of {total}): nothing left to train")
    window_loss, window_targets, window_tokens, window_time = 0.0, 0, 0, 0.0
    with ProgressBar(total, state.step, progress and cluster.is_main) as bar:
        while state.step < total and not state.stopped_early:
            began, cpu_began = time.perf_counter(), time.process_time()
            rows = plan.rows(state.step)
            step_tokens, step_targets = plan.counts(rows)

            # 1. learning rate for this step
            lr = learning_rate(
                state.step, peak=settings.learning_rate, total_steps=total, warmup=warmup, kind=settings.lr_scheduler
            )
            for group in optimizer.param_groups:
                group["lr"] = lr

            # 2. forward/backward over micro-batches; gradients add up to d(mean loss over the step's targets)
            micros = split_step(rows, data.lengths, settings.grad_accum, cluster.rank, cluster.world)
            loss_sum = torch.zeros((), device=cluster.device)
            for i, micro in enumerate(micros):
                batch: Batch = collate([data.rows[r] for r in micro], pad_id).to(cluster.device)
                last = i == len(micros) - 1
                with nullcontext() if last else cluster.no_sync(objective), autocast:
                    loss, _ = objective(*batch.inputs())
                scaled = loss * (cluster.world / max(1, step_targets))  # DDP averages over processes
                (scaler.scale(scaled) if scaler else scaled).backward()
                loss_sum += loss.detach()

            # 3. clip
            if scaler:
                scaler.unscale_(optimizer)
            grad_norm = cluster.clip_grad_norm(objective, params, settings.max_grad_norm)

            # 4. optimizer step
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if masters:
                masters.copy_to_model()
            window_loss += cluster.sum(loss_sum)  # waits for the device: the step is over
            elapsed = time.perf_counter() - began
            state.step += 1
            state.tokens_seen += step_tokens
            result.step_times.append(elapsed)
            result.step_cpu_times.append(time.process_time() - cpu_began)
            result.step_tokens.append(step_tokens)

            # 5. log, evaluate, checkpoint
            window_targets += step_targets
            window_tokens += step_tokens
            window_time += elapsed
            record = None
            if state.step % settings.log_every == 0 or state.step == total:
                record = {
                    "step": state.step,
                    "epoch": round(state.step / plan.steps_per_epoch, 4),
                    "loss": window_loss / max(1, window_targets),
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "tokens_seen": state.tokens_seen,
                    "tokens_per_s": window_tokens / window_time,
                }
                if preference:  # reward accuracy, margin, chosen/rejected log-probs over the window
                    sums = cluster.unwrap(objective).take_stats()
                    record.update(stats_record([cluster.sum(v) for v in sums]))
                result.final_loss = record["loss"]
                if cluster.is_main:
                    log.append(record)
                    trackers.log(record)
                window_loss, window_targets, window_tokens, window_time = 0.0, 0, 0, 0.0
            bar.advance(state.step, record)
            if eval_data and settings.eval_every and state.step % settings.eval_every == 0:
                result.eval_loss = _evaluate(
                    objective, eval_data, settings, state, pad_id, cluster, autocast, log, trackers, folder, bar, probe,
                    masters,
                )
            if state.step % settings.save_every == 0 or state.step == total or state.stopped_early:
                save_checkpoint(
                    folder, objective, optimizer, names, state, fingerprint, settings.keep_checkpoints, cluster,
                    masters,
                )

    if eval_data and (result.eval_loss is None or not settings.eval_every or state.step % settings.eval_every):
        result.eval_loss = _evaluate(
            objective, eval_data, settings, state, pad_id, cluster, autocast, log, trackers, folder, bar, probe, masters
        )
    trackers.close()
    if masters:
        masters.into_model()
    if settings.keep_best and state.best_step is not None:
        ckpt.load_trainable(cluster.unwrap(objective), ckpt.read_weights(folder / "best"))
    timed = slice(1, None) if len(result.step_times) > 1 else slice(None)  # the first step warms up
    result.tokens_per_s = sum(result.step_tokens[timed]) / max(1e-9, sum(result.step_times[timed]))
    result.steps, result.wrapped = state.step, objective
    use_attention(causal_lm(model), cluster.unwrap(objective).loaded_attention)  # as loaded, for later use
    if noise is not None:
        noise.remove()
    return result


def _evaluate(
    objective, eval_data, settings, state, pad_id, cluster, autocast, log, trackers, folder, bar, probe=None,
    masters=None,
) -> float:
    """Eval loss (and the probe's metric) now; track the best for early stopping and keep_best."""
    objective.eval()
    inner = cluster.unwrap(objective)
    stats = inner.take_stats() if isinstance(inner, PreferenceObjective) else None
    with torch.compiler.set_stance("force_eager"):  # compiling a no-gradient graph costs more than it saves here
        value = eval_loss(objective, eval_data.rows, settings.batch_size * 2, pad_id, cluster, autocast)
    generated = _probe(objective, probe, cluster, autocast) if probe is not None else None
    objective.train()
    extra = {}
    if stats is not None:  # the held-out pairs' stats, apart from the training window's
        eval_stats = inner.take_stats()
        inner.stats += stats
        extra = {f"eval_{k}": v for k, v in stats_record([cluster.sum(v) for v in eval_stats]).items()}
    # the tracked value is lower-is-better: eval loss, or minus the generation metric (train.best_metric)
    tracked = -generated if settings.best_metric == "generation" and generated is not None else value
    improved = state.best_eval_loss is None or tracked < state.best_eval_loss
    if improved:
        state.best_eval_loss, state.best_step, state.evals_without_improvement = tracked, state.step, 0
        if settings.keep_best:
            save_best(folder, objective, cluster, masters)
    else:
        state.evals_without_improvement += 1
        patience = settings.early_stopping_patience
        state.stopped_early = patience is not None and state.evals_without_improvement >= patience
    record = {"step": state.step, "epoch": None, "eval_loss": value, **extra}
    if generated is not None:
        record[f"eval_{probe.metric}"] = generated
    if cluster.is_main:
        log.append(record)
        trackers.log(record)
    shown = f", {probe.metric} {generated:.3f} on {len(probe.prompts)} answers" if generated is not None else ""
    bar.print(f"step {state.step}: eval loss {value:.4f}{shown}" + (" (best)" if improved else ""))
    return value


def _probe(objective, probe: GenerationProbe, cluster, autocast) -> float | None:
    """The probe's metric on the model as it is now (one process only: generation is not sharded)."""
    if cluster.world > 1:
        return None
    inner = cluster.unwrap(objective)
    use_attention(causal_lm(inner.model), inner.loaded_attention)  # the objective sets its own again next step
    with autocast:
        return probe(inner.model)
