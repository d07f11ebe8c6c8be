"""Hand-built token rows and a tiny trainable model for the train tests (no prep stage needed)."""

from __future__ import annotations

import random

from datasets import Dataset

from tiny import tiny_model, tiny_tokenizer
from tunesmith.config import LoraConfig, TrainConfig
from tunesmith.data.templates import resolve_template
from tunesmith.data.tokenize import encode_segments
from tunesmith.train import methods
from tunesmith.train.hardware import Precision

FP32 = Precision("fp32", "fp32", autocast=False)
BF16_LORA = Precision("bf16", "bf16", autocast=True)
BF16_FULL = Precision("bf16", "fp32", autocast=True)
BF16_MASTER = Precision("bf16", "bf16", autocast=False, master_weights=True)  # full: bf16 weights, fp32 masters


def qa_rows(tokenizer, n: int = 48, seed: int = 0) -> Dataset:
    """Arithmetic question/answer pairs in chatml; prompt tokens masked (-100)."""
    rng = random.Random(seed)
    template = resolve_template("chatml", tokenizer)
    ids_col, labels_col = [], []
    for _ in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        messages = [
            {"role": "user", "content": f"What is {a} plus {b}?" + " hello" * rng.randint(0, 6)},
            {"role": "assistant", "content": f"The answer is {a + b}."},
        ]
        ids, labels = encode_segments(tokenizer, template.segments(messages))
        ids_col.append(ids)
        labels_col.append(labels)
    return Dataset.from_dict({"input_ids": ids_col, "labels": labels_col})


def text_rows(tokenizer, n: int = 32, seed: int = 0) -> Dataset:
    """Self-supervised rows: every token trained."""
    rng = random.Random(seed)
    sentences = [
        "the quick brown fox jumps over the lazy dog.",
        "hello world, 0 1 2 3 4 5 6 7 8 9.",
        "Paris is the capital of France.",
    ]
    ids_col = [tokenizer(" ".join(rng.choice(sentences) for _ in range(rng.randint(1, 3)))).input_ids for _ in range(n)]
    return Dataset.from_dict({"input_ids": ids_col, "labels": [list(x) for x in ids_col]})


def packed_rows(rows: Dataset, width: int = 64) -> Dataset:
    """Greedy packing of `rows` into rows of at most `width` tokens, position_ids restarting per example."""
    out = {"input_ids": [], "labels": [], "position_ids": []}
    current = {"input_ids": [], "labels": [], "position_ids": []}
    for ids, labels in zip(rows["input_ids"], rows["labels"], strict=True):
        if current["input_ids"] and len(current["input_ids"]) + len(ids) > width:
            for key in out:
                out[key].append(current[key])
            current = {"input_ids": [], "labels": [], "position_ids": []}
        current["input_ids"] += ids
        current["labels"] += labels
        current["position_ids"] += list(range(len(ids)))
    for key in out:
        out[key].append(current[key])
    return Dataset.from_dict(out)


def settings(**overrides) -> TrainConfig:
    base = dict(
        max_steps=12,
        batch_size=8,
        learning_rate=5e-3,
        warmup_ratio=0.1,
        log_every=1,
        save_every=1000,
        lora=LoraConfig(r=8, alpha=16, dropout=0.0),
        seed=3,
    )
    return TrainConfig(**{**base, **overrides})


def trainable_model(method: str = "lora", precision: Precision = FP32, seed: int = 0, **lora):
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=seed)
    if precision.frozen_weights == "bf16" and not precision.master_weights:  # masters: fp32 in, rounded in fit
        model = model.bfloat16()
    lora_config = LoraConfig(**{"r": 8, "alpha": 16, "dropout": 0.0, **lora})
    return methods.prepare_for_training(model, method, lora_config, seed=3, autocast=precision.autocast), tokenizer


def pair_rows(tokenizer, n: int = 32, seed: int = 0) -> Dataset:
    """Preference pairs in chatml, a style to learn: chosen "the answer is 7!", rejected "The answer is 7."
    (or a wrong sum); prompts masked."""
    rng = random.Random(seed)
    template = resolve_template("chatml", tokenizer)
    columns = {"input_ids": [], "labels": [], "rejected_input_ids": [], "rejected_labels": []}
    for _ in range(n):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        wrong = (a + b + rng.randint(1, 5)) % 19
        prompt = {"role": "user", "content": f"What is {a} plus {b}?"}
        rejected = f"The answer is {a + b}." if rng.random() < 0.5 else f"The answer is {wrong}."
        for side, answer in (("", f"the answer is {a + b}!"), ("rejected_", rejected)):
            messages = [prompt, {"role": "assistant", "content": answer}]
            ids, labels = encode_segments(tokenizer, template.segments(messages))
            columns[f"{side}input_ids"].append(ids)
            columns[f"{side}labels"].append(labels)
    return Dataset.from_dict(columns)
