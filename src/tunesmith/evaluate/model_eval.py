"""Evaluate one model on the test examples: generate, score, tag failures, measure perplexity."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tunesmith.data.templates import Template
from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine import Sequence, generate, stop_token_ids
from tunesmith.evaluate.examples import EvalExample, Task, answer_ids
from tunesmith.evaluate.fewshot import ShotIndex, few_shot_messages
from tunesmith.evaluate.loglik import continuation_logprobs
from tunesmith.evaluate.metrics import aggregate, score_example
from tunesmith.evaluate.metrics.bleu import corpus_bleu
from tunesmith.evaluate.metrics.perplexity import perplexity
from tunesmith.evaluate.tags import count_tags, failed, tag_failure


@dataclass(frozen=True)
class EvalSettings:
    max_new_tokens: int
    batch_size: int
    extract: str | None
    task: Task
    shots: ShotIndex | None = None  # set for the few-shot baseline
    k: int = 0  # shots per question


def run_model(
    model,
    tokenizer,
    template: Template,
    examples: list[EvalExample],
    settings: EvalSettings,
    *,
    similarity=None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict], dict]:
    """(one record per example, aggregate metrics) for `model` on `examples`."""
    conversations = [_conversation(example, settings) for example in examples]
    prompts = [encode_prompt(tokenizer, template, messages, input_text) for messages, input_text in conversations]
    started = time.perf_counter()
    generations = generate_answers(model, tokenizer, template, prompts, settings.max_new_tokens,
                                   settings.batch_size, progress)
    generation_seconds = time.perf_counter() - started
    answers = [answer_ids(tokenizer, template, example) for example in examples]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pairs = list(zip(prompts, answers, strict=True))
    logprobs = continuation_logprobs(model, pairs, pad_id=pad_id, batch_size=settings.batch_size)
    records = []
    for example, (messages, input_text), generation, (logprob, count) in zip(
        examples, conversations, generations, logprobs, strict=True
    ):
        record = _record(example, template.prompt(messages, input_text), generation, settings)
        records.append(record | {"nll": -logprob, "answer_tokens": count})
    if similarity is not None:
        scores = similarity.score([r["prediction"] for r in records], [r["reference"] for r in records])
        for record, score in zip(records, scores, strict=True):
            record["scores"]["semantic_similarity"] = score
    metrics = summarize(records, generations, settings.task)
    metrics["generation_seconds"] = round(generation_seconds, 3)
    metrics["tokens_per_s"] = round(metrics["generated_tokens"] / max(generation_seconds, 1e-9), 2)
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    return records, metrics


def generate_answers(model, tokenizer, template: Template, prompts: list[list[int]], max_new_tokens: int,
                     batch_size: int, progress: Callable[[int], None] | None = None) -> list[Sequence]:
    """Greedy answers from the engine, exactly as `tunesmith generate` and `serve` (temperature 0) give them."""
    stops = template.stop_strings
    sequences = [Sequence(ids, max_new_tokens, stop_strings=stops) for ids in prompts]
    generate(model, tokenizer, sequences, stop_token_ids(model, tokenizer, stops), batch_size=batch_size,
             progress=progress)
    failed = next((s for s in sequences if s.error), None)
    if failed is not None:
        raise RuntimeError(f"generation failed: {failed.error}")
    return sequences


def _conversation(example: EvalExample, settings: EvalSettings) -> tuple[list[dict], str]:
    if settings.shots is None or settings.k == 0:
        return example.messages, example.input_text
    return few_shot_messages(example, settings.shots.nearest(example.question, settings.k))


def _record(example: EvalExample, prompt: str, generation: Sequence, settings: EvalSettings) -> dict:
    scores = score_example(generation.text, example.reference, settings.extract)
    tags = (
        tag_failure(generation.text, generation.stopped, scores, settings.extract)
        if failed(scores, settings.task.type)
        else []
    )
    return {
        "index": example.index,
        "source": example.source,
        "question": example.question,
        "prompt": prompt,
        "reference": example.reference,
        "prediction": generation.text,
        "stopped": generation.stopped,
        "new_tokens": generation.new_tokens,
        "scores": scores,
        "tags": tags,
    }


def summarize(records: list[dict], generations: list[Sequence], task: Task) -> dict:
    """Mean of each per-example score, plus corpus BLEU, perplexity, failure tags and stop reasons."""
    metrics: dict = aggregate([record["scores"] for record in records])
    metrics["perplexity"] = perplexity(sum(r["nll"] for r in records), sum(r["answer_tokens"] for r in records))
    metrics["corpus_bleu"] = corpus_bleu([r["prediction"] for r in records], [r["reference"] for r in records])
    metrics["failed"] = sum(1 for record in records if record["tags"])
    metrics["tags"] = count_tags(records)
    metrics["stopped"] = dict(Counter(g.stopped for g in generations))
    metrics["generated_tokens"] = sum(g.new_tokens for g in generations)
    metrics["task_type"] = task.type
    return metrics
