"""Is the difference real? Paired bootstrap intervals, and the examples that changed most.

Everything here works from eval/predictions.jsonl (side by side), so the report can be rebuilt
from the files alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tunesmith.evaluate.metrics.perplexity import perplexity
from tunesmith.evaluate.tags import CONTRADICTS

RESAMPLES = 1000
PARTIAL = ("fact_recall", "judge_score")  # defined for some answers only (facts to check, a parsed verdict)
CHUNK = 100  # resamples drawn at once: memory stays at CHUNK x examples indices


@dataclass(frozen=True)
class Difference:
    metric: str
    value: float  # b - a on the whole test split
    low: float  # 95% bootstrap interval of b - a
    high: float

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def example_score(row: dict, model: str, task_type: str) -> float | None:
    """The per-example quality used to rank wins and regressions: F1 (extraction) or ROUGE-L."""
    scores = (row.get(model) or {}).get("scores") or {}
    return scores.get("token_f1" if task_type == "extraction" else "rouge_l")


def differences(rows: list[dict], a: str, b: str, metrics: list[str], *, seed: int = 0) -> list[Difference]:
    """b - a with a paired bootstrap 95% interval for each metric (examples both models answered)."""
    paired = [row for row in rows if row.get(a) and row.get(b)]
    if not paired:
        return []
    rng = np.random.default_rng(seed)
    draws = _draws(rng, len(paired))
    out = []
    for metric in metrics:
        if metric == "perplexity":
            out.append(_perplexity_difference(paired, a, b, draws))
            continue
        values = [(row[a]["scores"].get(metric), row[b]["scores"].get(metric)) for row in paired]
        if metric in PARTIAL:
            values = [(x, y) for x, y in values if x is not None and y is not None]
        if not values or any(x is None or y is None for x, y in values):
            continue
        delta = np.array([y - x for x, y in values], dtype=np.float64)
        boot = np.concatenate([delta[idx].mean(axis=1) for idx in (draws if len(values) == len(paired)
                                                                   else _draws(rng, len(values)))])  # fmt: skip
        out.append(Difference(metric, float(delta.mean()), *_interval(boot)))
    return out


def _draws(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """RESAMPLES rows of n indices drawn with replacement, in chunks of CHUNK rows."""
    return [rng.integers(0, n, (min(CHUNK, RESAMPLES - start), n)) for start in range(0, RESAMPLES, CHUNK)]


def _perplexity_difference(rows: list[dict], a: str, b: str, draws) -> Difference:
    nll = {m: np.array([row[m].get("nll") or 0.0 for row in rows]) for m in (a, b)}
    tokens = {m: np.array([row[m].get("answer_tokens") or 0 for row in rows]) for m in (a, b)}
    whole = perplexity(nll[b].sum(), int(tokens[b].sum())) - perplexity(nll[a].sum(), int(tokens[a].sum()))
    boot = []
    for idx in draws:
        per = {m: np.exp(nll[m][idx].sum(1) / np.maximum(tokens[m][idx].sum(1), 1)) for m in (a, b)}
        boot.append(per[b] - per[a])
    return Difference("perplexity", float(whole), *_interval(np.concatenate(boot)))


def _interval(boot: np.ndarray) -> tuple[float, float]:
    finite = boot[np.isfinite(boot)]
    if not len(finite):
        return math.nan, math.nan
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def mean_interval(values: list[float], *, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the mean of `values`."""
    data = np.asarray(values, dtype=np.float64)
    if not len(data):
        return math.nan, math.nan
    draws = _draws(np.random.default_rng(seed), len(data))
    return _interval(np.concatenate([data[idx].mean(axis=1) for idx in draws]))


def contradicts(row: dict, model: str) -> bool:
    """Whether `model`'s answer in a side-by-side row states a fact that contradicts the reference."""
    answer = row.get(model) or {}
    return CONTRADICTS in (answer.get("tags") or []) or bool((answer.get("scores") or {}).get("contradicts"))


def wins_and_regressions(rows: list[dict], task_type: str, *, base: str = "base", tuned: str = "tuned", top: int = 10):
    """(largest wins, largest regressions) of `tuned` over `base`, each a list of (delta, row).

    An answer that contradicts the reference is never a win, however much it resembles it.
    """
    changed = []
    for row in rows:
        before, after = example_score(row, base, task_type), example_score(row, tuned, task_type)
        if before is not None and after is not None and abs(after - before) > 1e-9:
            changed.append((after - before, row))
    kept = (c for c in changed if c[0] > 0 and not contradicts(c[1], tuned))
    wins = sorted(kept, key=lambda c: (-c[0], c[1]["index"]))
    regressions = sorted((c for c in changed if c[0] < 0), key=lambda c: (c[0], c[1]["index"]))
    return wins[:top], regressions[:top]


def count_changes(rows: list[dict], task_type: str, base: str = "base", tuned: str = "tuned") -> dict[str, int]:
    """How many examples got better, worse, or stayed the same from `base` to `tuned`."""
    counts = {"better": 0, "worse": 0, "same": 0}
    for row in rows:
        before, after = example_score(row, base, task_type), example_score(row, tuned, task_type)
        if before is None or after is None:
            continue
        key = "same" if abs(after - before) <= 1e-9 else ("better" if after > before else "worse")
        counts[key] += 1
    return counts
