"""A FAQ-like set of short question/answer rows, built reproducibly from ../shared/data.

  python bench/faq_rows.py --out /tmp/faq.jsonl            # 1,400 rows; prints their token lengths

About half the rows (ARC_SHARE) are ARC-Easy train questions (CC BY-SA 4.0) with their options
in the question and the right option as the answer ("B. a bacterial population in the
bloodstream"); the rest are GSM8K train problems (MIT) whose question and worked answer fit in
MAX_CHARS characters, with the calculator annotations (<<48/2=24>>) taken out and the final
"#### 72" written as "The answer is 72.". Each source is shuffled with the seed, the picked rows
are shuffled together the same way, and every question is distinct. Nothing derived is
committed: the bench writes the rows at run time, under the licences in ../shared/data/*/LICENSE.
With SmolLM2-135M-Instruct's chat template (it adds its system prompt) the default 1,400 rows are
a median of 118 tokens and a p95 of 198; the bench prints what it measures each run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
from pathlib import Path

from bench_train import SHARED

SHARED_DATA = SHARED / "data"
ROWS = 1400
MAX_CHARS = 550  # GSM8K problems longer than this (question + cleaned answer) are left out
ARC_SHARE = 0.52  # with MAX_CHARS, puts the median near 118 tokens and the p95 near 200
CALCULATOR = re.compile(r"<<[^>]*>>")


def arc_row(record: dict) -> dict:
    """ARC's {question, choices: {text, label}, answerKey} -> a question with its options, and the answer."""
    labels, texts = record["choices"]["label"], record["choices"]["text"]
    options = "\n".join(f"{label}. {text}" for label, text in zip(labels, texts, strict=True))
    answer = texts[labels.index(record["answerKey"])]
    return {"question": f"{record['question']}\n{options}", "answer": f"{record['answerKey']}. {answer}"}


def gsm8k_row(record: dict) -> dict:
    """GSM8K's worked answer without calculator annotations, ending in one plain sentence."""
    work, _, final = CALCULATOR.sub("", record["answer"]).rpartition("####")
    return {"question": record["question"], "answer": f"{work.strip()}\nThe answer is {final.strip()}."}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build(data_dir: Path = SHARED_DATA, rows: int = ROWS, seed: int = 0, max_chars: int = MAX_CHARS) -> list[dict]:
    """`rows` distinct {question, answer} rows, ARC-Easy and short GSM8K, in a seeded order."""
    rng = random.Random(seed)
    arc = [arc_row(r) for r in read_jsonl(data_dir / "arc_easy" / "train.jsonl")]
    gsm = [gsm8k_row(r) for r in read_jsonl(data_dir / "gsm8k" / "train.jsonl")]
    gsm = [r for r in gsm if len(r["question"]) + len(r["answer"]) <= max_chars]
    rng.shuffle(arc)
    rng.shuffle(gsm)
    n_arc = round(rows * ARC_SHARE)
    picked = distinct(arc, n_arc) + distinct(gsm, rows - n_arc)
    if len(picked) < rows:
        raise SystemExit(f"{data_dir} yields {len(picked)} distinct short rows; asked for {rows}")
    rng.shuffle(picked)
    return picked


def distinct(rows: list[dict], count: int) -> list[dict]:
    seen: set[str] = set()
    kept = []
    for row in rows:
        if row["question"] not in seen and len(kept) < count:
            seen.add(row["question"])
            kept.append(row)
    return kept


def token_lengths(rows: list[dict], tokenizer) -> list[int]:
    """Tokens per row as the model's chat template renders it (system prompt, question, answer)."""
    return [
        len(tokenizer.apply_chat_template(
            [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}],
            tokenize=True, return_dict=True,
        )["input_ids"])
        for r in rows
    ]  # fmt: skip


def length_stats(lengths: list[int]) -> dict[str, float]:
    ordered = sorted(lengths)
    return {"rows": len(ordered), "median": statistics.median(ordered),
            "p95": ordered[round(0.95 * (len(ordered) - 1))], "max": ordered[-1]}  # fmt: skip


def write_jsonl(rows: list[dict], path: Path) -> None:
    from tunesmith.runs import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    from tunesmith.models import resolve_model

    rows = build(args.data_dir, args.rows, args.seed)
    write_jsonl(rows, args.out)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct").path)
    print(f"wrote {len(rows)} rows to {args.out}; tokens per row with the chat template: "
          f"{length_stats(token_lengths(rows, tokenizer))}")  # fmt: skip


if __name__ == "__main__":
    main()
