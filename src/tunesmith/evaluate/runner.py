"""`tunesmith compare` and `tunesmith eval`: the stage entry points (they take the whole Config).

compare = the same test split through the base model zero-shot, the base model with few-shot
examples (the prompt-engineering baseline), and the fine-tuned model, with one template and
one set of generation settings. Writes under `run_dir/eval/`:

- `metrics.json`: {"base": {...}, "few_shot": {...}, "tuned": {...}}
- `predictions_<model>.jsonl` and `predictions.jsonl` (side by side, one line per example)
- `compare.json`: what was run: task type and why, settings, skipped models, and `generation`
  (device, dtype and why, greedy, max_new_tokens: what the numbers hold for)
- `choices_<model>.jsonl`: per-question multiple-choice scores, when eval.choices_path is set
- `general_<model>.jsonl`: per-question scores on the bundled general-knowledge set (eval.forgetting)

Every model's answers are also checked for the reference's facts and house style
(`tunesmith.evaluate.knowledge`): fact recall, contradictions, format, stops, on topic.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, replace
from pathlib import Path

from tunesmith.config import Config
from tunesmith.data.answer_length import eval_max_new_tokens
from tunesmith.data.templates import Template
from tunesmith.errors import TunesmithError
from tunesmith.evaluate.choice import ChoiceRow, load_choices, score_choices
from tunesmith.evaluate.examples import EvalExample, Task, detect_task, examples_from_rows
from tunesmith.evaluate.fewshot import ShotIndex
from tunesmith.evaluate.forgetting import general_questions, result_file
from tunesmith.evaluate.forgetting import summary as general_summary
from tunesmith.evaluate.judge import client_from_config, judge_results
from tunesmith.evaluate.knowledge import add_knowledge
from tunesmith.evaluate.model_eval import EvalSettings, run_model
from tunesmith.evaluate.outputs import write_jsonl, write_outputs
from tunesmith.evaluate.preference import pair_margins, pair_rows, preference_metrics
from tunesmith.evaluate.progress import Progress
from tunesmith.evaluate.setup import eval_policy, generation_info, load_model_for_eval, maybe_similarity
from tunesmith.runs import RunDir, writing

MODELS = ("base", "few_shot", "tuned")


@dataclass
class Job:
    """Everything the models are run on: identical for all three, except the few-shot settings."""

    template: Template
    examples: list[EvalExample]
    plan: dict[str, EvalSettings]  # model name -> settings, in MODELS order
    choices: list[ChoiceRow] | None
    similarity: object | None  # a SemanticSimilarity, or None
    general: list[ChoiceRow] | None = None  # the bundled general-knowledge questions (eval.forgetting)
    pairs: list[dict] | None = None  # preference test pairs (token rows), scored by log-likelihood


def load_prepared(config: Config):
    """The prepared data (train, test, template); the seam tests replace."""
    from tunesmith.data.prepare import ensure_prepared

    return ensure_prepared(config)


def compare(
    config: Config, *, models: tuple[str, ...] = MODELS, progress: bool = True, similarity: bool | None = None
) -> dict:
    """Evaluate `models` on the test split and write the eval/ files; returns metrics.json's content.

    `similarity`: compute semantic similarity with the offline embedding model (None = when installed).
    """
    return _compare(config, tuple(models), progress, similarity, keep_previous=False)


def evaluate(config: Config, *, model: str = "tuned", progress: bool = True, similarity: bool | None = None) -> dict:
    """Evaluate one model ('base', 'few_shot' or 'tuned'); returns its metrics (one flat dict).

    Only that model's entry in eval/metrics.json (and its predictions) is replaced; models
    evaluated earlier stay, and predictions.jsonl is rebuilt side by side.
    """
    return _compare(config, (model,), progress, similarity, keep_previous=True).get(model, {})


def _compare(config: Config, models: tuple[str, ...], progress: bool, similarity: bool | None, keep_previous: bool):
    unknown = [name for name in models if name not in MODELS]
    if unknown:
        raise TunesmithError(f"compare: unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    # one writer: a training run writing the adapter, or another compare writing eval/, refuses this one
    with writing(Path(config.run_dir), "tunesmith eval" if keep_previous else "tunesmith compare"):
        return _compare_locked(config, models, progress, similarity, keep_previous)


def _compare_locked(config: Config, models: tuple[str, ...], progress: bool, similarity: bool | None,
                    keep_previous: bool) -> dict:
    run = RunDir(Path(config.run_dir))
    choices = load_choices(config.eval.choices_path) if config.eval.choices_path else None  # fail early
    judge = client_from_config(config.eval.judge, run.eval) if config.eval.judge else None
    if judge is not None:
        judge.check()  # fail early too
    prepared = load_prepared(config)
    examples = examples_from_rows(prepared.test, config.eval.max_examples)
    task = detect_task(examples, config.eval.task_type, config.eval.extract)
    length = eval_max_new_tokens(config.eval.max_new_tokens, run.data, prepared.test)
    plan, skipped = _plan(config, prepared.train, task, models, length[0])
    started = time.time()
    generation = generation_info(eval_policy(config), length[0], config.eval.batch_size)
    with Progress(progress) as bar:
        bar.note(f"task: {task.type} ({task.reason}); answers up to {length[0]} tokens ({length[1]})")
        bar.note(f"{generation['summary']} ({generation['dtype_reason']})")
        for name, reason in skipped.items():
            bar.note(f"{name} skipped: {reason}")
        general = general_questions(config.eval.forgetting_size) if config.eval.forgetting else None
        pairs = pair_rows(prepared.test, config.eval.max_examples)
        job = Job(prepared.template, examples, plan, choices, maybe_similarity(similarity), general, pairs)
        results = _run(config, run, job, bar)
    add_knowledge(results)
    info = _info(config, task, examples, skipped, started, generation, length)
    if judge is not None:
        info["judge"] = judge_results(results, judge)
    write_outputs(run, results, info, keep_previous=keep_previous)
    return {name: metrics for name, (_, metrics) in results.items()}


def _plan(config: Config, train_rows, task: Task, models, max_new_tokens: int
          ) -> tuple[dict[str, EvalSettings], dict[str, str]]:
    """Settings for each model to run, and why any asked-for model cannot run."""
    settings = EvalSettings(max_new_tokens, config.eval.batch_size, config.eval.extract, task)
    plan: dict[str, EvalSettings] = {}
    skipped: dict[str, str] = {}
    for name in (m for m in MODELS if m in models):
        if name != "few_shot":
            plan[name] = settings
        elif config.eval.few_shot == 0:
            skipped[name] = "eval.few_shot is 0"
        else:
            try:
                plan[name] = replace(settings, shots=ShotIndex(examples_from_rows(train_rows)), k=config.eval.few_shot)
            except TunesmithError:
                skipped[name] = "the training split has no question/answer rows to use as shots (plain-text data)"
    return plan, skipped


def _run(config: Config, run: RunDir, job: Job, bar: Progress) -> dict:
    """Run each planned model; the base model is loaded once for both base and few_shot."""
    results: dict[str, tuple[list[dict], dict]] = {}
    margins: dict[str, object] = {}
    for base_only, group in ((True, ("base", "few_shot")), (False, ("tuned",))):
        names = [name for name in group if name in job.plan]
        if not names:
            continue
        loaded = load_model_for_eval(config, run, base_only=base_only)
        for name in names:
            with bar.task(name, len(job.examples)) as advance:
                results[name] = run_model(
                    loaded.model,
                    loaded.tokenizer,
                    job.template,
                    job.examples,
                    job.plan[name],
                    similarity=job.similarity,
                    progress=advance,
                )
            if job.choices and name != "few_shot":
                path = run.eval / f"choices_{name}.jsonl"
                _score_choices(results[name][1], loaded, job, config.eval.batch_size, path)
            if job.general and name != "few_shot":
                result = score_choices(loaded.model, loaded.tokenizer, job.template, job.general,
                                       batch_size=config.eval.batch_size)  # fmt: skip
                results[name][1].update(general_summary(result))
                write_jsonl(result_file(run.eval, name), result["examples"])
            if job.pairs and name != "few_shot":
                margins[name] = pair_margins(loaded.model, job.pairs, loaded.tokenizer.pad_token_id,
                                             config.eval.batch_size)
                base = margins.get("base") if name == "tuned" else None
                results[name][1].update(preference_metrics(margins[name], base))
        del loaded
        gc.collect()
    return {name: results[name] for name in MODELS if name in results}


def _score_choices(metrics: dict, loaded, job: Job, batch_size: int, path: Path) -> None:
    result = score_choices(loaded.model, loaded.tokenizer, job.template, job.choices, batch_size=batch_size)
    metrics["choice_accuracy"] = result["accuracy"]
    metrics["choice_accuracy_norm"] = result["accuracy_norm"]
    metrics["choice_n"] = result["n"]
    write_jsonl(path, result["examples"])


def _info(config: Config, task: Task, examples: list[EvalExample], skipped: dict, started: float,
          generation: dict, length: tuple[int, str]) -> dict:
    return {
        "task": {"type": task.type, "reason": task.reason, "lead": task.lead},
        "examples": len(examples),
        "max_new_tokens": length[0],
        "max_new_tokens_from": length[1],
        "batch_size": config.eval.batch_size,
        "few_shot": config.eval.few_shot,
        "extract": config.eval.extract,
        "choices_path": config.eval.choices_path,
        "forgetting": config.eval.forgetting_size if config.eval.forgetting else 0,
        "skipped": skipped,
        "device": f"{generation['device']} {generation['dtype']}",
        "generation": generation,
        "seconds": round(time.time() - started, 2),
    }
