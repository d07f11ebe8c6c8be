"""During training: eval loss on the held-out split (the same objective as training, no gradients, no
dropout), and optionally the task metric of answers generated for a few test examples."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from tunesmith.train.batching import collate
from tunesmith.train.loss import IGNORE_INDEX


def eval_loss(
    objective: nn.Module, rows: list[dict], batch_size: int, pad_id: int, cluster, autocast: AbstractContextManager
) -> float:
    """Mean token loss over every trained target in `rows`, shared out across processes.

    Every process runs the same number of forward passes (FSDP and DDP need that); a process
    whose share of a batch is empty runs a fully masked copy of one row and counts nothing.
    """
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
    loss_sum = torch.zeros((), dtype=torch.float64)
    count = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            share = order[start : start + batch_size][cluster.rank :: cluster.world]
            chosen = [rows[i] for i in share] or [_masked(rows[order[start]])]
            batch = collate(chosen, pad_id).to(cluster.device)
            with autocast:
                loss, targets = objective(*batch.inputs())
            loss_sum += loss.double().cpu()
            count += targets.double().cpu()
    total, n = cluster.sum(loss_sum), cluster.sum(count)
    return total / max(1.0, n)


def _masked(row: dict) -> dict:
    return {**row, "labels": [IGNORE_INDEX] * len(row["labels"])}


@dataclass
class GenerationProbe:
    """A fixed handful of test examples answered by the model being trained, scored with the task's metric
    (ROUGE-L for long answers, token F1 for short ones): a "does it answer better" curve beside eval loss."""

    prompts: list[list[int]]
    references: list[str]
    metric: str  # a per-example score of tunesmith.evaluate.metrics.score_example
    tokenizer: object
    stop_strings: tuple[str, ...]
    max_new_tokens: int
    batch_size: int
    extract: str | None = None

    def __call__(self, model: nn.Module) -> float:
        """The mean metric of the model's greedy answers (layers run eagerly: compiled ones would recompile)."""
        from tunesmith.engine import Sequence, generate, stop_token_ids
        from tunesmith.evaluate.metrics import score_example

        answers = [Sequence(prompt, self.max_new_tokens, stop_strings=self.stop_strings) for prompt in self.prompts]
        stop_ids = stop_token_ids(model, self.tokenizer, self.stop_strings)
        with torch.compiler.set_stance("force_eager"):
            generate(model, self.tokenizer, answers, stop_ids, batch_size=self.batch_size)
        pairs = zip(answers, self.references, strict=True)
        return sum(score_example(a.text, ref, self.extract)[self.metric] for a, ref in pairs) / len(self.references)


def generation_probe(test_rows, template, tokenizer, *, size: int, task_type: str, extract: str | None,
                     max_new_tokens: int, batch_size: int) -> GenerationProbe | None:
    """A probe on the first `size` question/answer examples of the test split; None without any."""
    from tunesmith.data.tokenize import encode_prompt
    from tunesmith.errors import TunesmithError
    from tunesmith.evaluate.examples import detect_task, examples_from_rows

    try:
        examples = examples_from_rows(test_rows, size)
    except TunesmithError:
        return None  # plain text: nothing to answer
    task = detect_task(examples, task_type, extract)
    prompts = [encode_prompt(tokenizer, template, e.messages, e.input_text) for e in examples]
    metric = "token_f1" if task.type == "extraction" else "rouge_l"
    references = [e.reference for e in examples]
    return GenerationProbe(prompts, references, metric, tokenizer, template.stop_strings, max_new_tokens, batch_size,
                           extract)  # fmt: skip
