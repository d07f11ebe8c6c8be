"""Write a large question/answer JSONL for prep benchmarks (deterministic for a given seed).

  python bench/gen_rows.py --rows 1000000 --out /tmp/rows_1m.jsonl

Words are drawn from a real corpus (gsm8k by default) so token counts per word are realistic;
questions have 8-40 words and answers 5-60, and every question is distinct.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

DEFAULT_WORDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"


def vocabulary(source: Path) -> list[str]:
    if source.is_file():
        lines = source.read_text(encoding="utf-8").splitlines()
        text = " ".join(" ".join(str(v) for v in json.loads(line).values()) for line in lines if line.strip())
        words = sorted(set(re.findall(r"[A-Za-z]+|\d+", text)))
        if len(words) > 100:
            return words
    return [a + b for a in "bcdfghklmnprstvz" for b in ("a", "e", "i", "o", "u", "an", "er", "on")]


def rows(count: int, words: list[str], seed: int):
    rng = random.Random(seed)
    for i in range(count):
        question = " ".join(rng.choices(words, k=rng.randint(8, 40)))
        answer = " ".join(rng.choices(words, k=rng.randint(5, 60)))
        yield {"question": f"{question} (#{i})?", "answer": answer + "."}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--words-from", type=Path, default=DEFAULT_WORDS)
    args = parser.parse_args()
    words = vocabulary(args.words_from)
    with args.out.open("w", encoding="utf-8") as handle:
        for row in rows(args.rows, words, args.seed):
            handle.write(json.dumps(row) + "\n")
    print(f"wrote {args.rows:,} rows to {args.out} ({args.out.stat().st_size / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
