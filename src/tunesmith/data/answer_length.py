"""`eval.max_new_tokens: auto`: a generation limit that fits the answers this data expects.

The limit is the test references' 95th-percentile length in tokens (with the end-of-answer
marker the model must also produce) times 1.25 plus 8, kept between 32 and 512: long enough
that a right answer is not cut and scored as truncated, short enough that a model that never
stops does not cost minutes. Prep computes it and records it in data_report.json; evaluation
reads it from there (or, for data prepared without it, recomputes it from the test labels).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tunesmith.data.tokenize import IGNORE_INDEX

FACTOR, HEADROOM, FLOOR, CAP = 1.25, 8, 32, 512
RULE = f"p95 of the test answers' tokens x {FACTOR} + {HEADROOM}, between {FLOOR} and {CAP}"
REPORT_KEY = "answer_length"


def auto_max_new_tokens(answer_tokens: np.ndarray | list[int]) -> dict:
    """{"max_new_tokens", "p95", "answers", "rule"} from the test references' lengths in tokens."""
    lengths = np.asarray(answer_tokens, dtype=np.int64)
    p95 = int(math.ceil(np.percentile(lengths, 95))) if len(lengths) else 0
    value = min(CAP, max(FLOOR, int(math.ceil(p95 * FACTOR)) + HEADROOM))
    return {"max_new_tokens": value, "p95": p95, "answers": int(len(lengths)), "rule": RULE}


def eval_max_new_tokens(setting: int | str, data_dir: Path, test_rows) -> tuple[int, str]:
    """(the generation limit to use, where it came from) for `eval.max_new_tokens`; `test_rows` has labels."""
    if setting != "auto":
        return int(setting), "eval.max_new_tokens"
    try:
        found = json.loads((Path(data_dir) / "data_report.json").read_text(encoding="utf-8"))[REPORT_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        found = auto_max_new_tokens([sum(1 for y in labels if y != IGNORE_INDEX) for labels in test_rows["labels"]])
    return int(found["max_new_tokens"]), f"auto: {found['rule']} (p95 {found['p95']} over {found['answers']} answers)"
