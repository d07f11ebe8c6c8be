"""What fine-tuning cost: the base and tuned models on a bundled general-knowledge multiple-choice set.

`data/general_knowledge.jsonl` is a seeded sample of 200 ARC-Easy train questions (CC BY-SA 4.0;
LICENSE and SOURCE.md beside it). The first `eval.forgetting_size` questions are scored by
log-likelihood exactly as `eval.choices_path` is; per-question results go to
`eval/general_<model>.jsonl`, so the report can pair base and tuned question by question.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tunesmith.evaluate.analysis import Difference, _draws, _interval
from tunesmith.evaluate.choice import ChoiceRow, load_choices

DATA_DIR = Path(__file__).parent / "data"
BUNDLED = DATA_DIR / "general_knowledge.jsonl"
SIZE = 200


def general_questions(size: int = SIZE) -> list[ChoiceRow]:
    """The first `size` questions of the bundled set (the file is already a random sample)."""
    return load_choices(BUNDLED)[:size]


def result_file(eval_dir: Path, model: str) -> Path:
    return Path(eval_dir) / f"general_{model}.jsonl"


def summary(result: dict) -> dict:
    """metrics.json keys for one model's score_choices result."""
    return {"general_accuracy": result["accuracy"], "general_accuracy_norm": result["accuracy_norm"],
            "general_n": result["n"]}  # fmt: skip


def accuracy_change(base: list[dict], tuned: list[dict], *, norm: bool = False, seed: int = 0) -> Difference | None:
    """tuned - base accuracy with a paired bootstrap 95% interval over the questions both answered."""
    key = "pred_norm" if norm else "pred"
    before = {row["source"]: float(row[key] == row["answer"]) for row in base}
    pairs = [(before[row["source"]], float(row[key] == row["answer"])) for row in tuned if row["source"] in before]
    if not pairs:
        return None
    delta = np.array([after - was for was, after in pairs])
    boot = np.concatenate([delta[idx].mean(axis=1) for idx in _draws(np.random.default_rng(seed), len(delta))])
    return Difference("general_accuracy_norm" if norm else "general_accuracy", float(delta.mean()), *_interval(boot))
