"""`tunesmith pairs RUN_DIR`: preference pairs from an evaluated run's own mistakes.

Each test example a model answered wrongly (its score on the task's lead metric below a threshold, or
tagged as contradicting the reference)
becomes {prompt, chosen: the reference answer, rejected: the model's answer}: the data a DPO, ORPO or
SimPO run needs to steer the model away from what it actually gets wrong. A single-turn prompt is
written as plain strings, a conversation (system prompt, earlier turns) in TRL's conversational shape.

The pairs come from the run's test split: a preference run on them holds out its own share
(data.test_size) and reports its numbers on that, never on examples it trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir, atomic_write_text

DEFAULT_BELOW = 0.5  # a lead-metric score under this is a wrong answer
WRONG_TAGS = {"contradiction"}  # knowledge tags that make an answer wrong whatever its score


@dataclass
class PairsResult:
    path: Path
    written: int
    considered: int
    metric: str
    below: float


def make_pairs(run_dir: Path, models: tuple[str, ...] = ("tuned",), metric: str | None = None,
               below: float = DEFAULT_BELOW, out: Path | None = None) -> PairsResult:
    """Write the pairs of `models`' wrong answers in run_dir's eval/ to `out` (run_dir/pairs.jsonl)."""
    run = RunDir(Path(run_dir))
    metric = metric or _lead_metric(run)
    prompts = _test_prompts(run)
    rows, considered = [], 0
    for model in models:
        for prediction in _predictions(run, model):
            considered += 1
            answer, reference = prediction.get("prediction", ""), prediction["reference"]
            score = (prediction.get("scores") or {}).get(metric)
            if score is None:
                raise TunesmithError(f"pairs --metric: {metric!r} is not among the scores in {run.eval}; "
                                     f"choose one of {', '.join(sorted(prediction.get('scores') or {}))}")
            wrong = score < below or bool(WRONG_TAGS & set(prediction.get("tags") or ()))
            if not wrong or not answer.strip() or answer.strip() == reference.strip():
                continue
            rows.append(_pair(prompts[prediction["index"]], reference, answer, prediction.get("source")))
    path = Path(out) if out else run.root / "pairs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return PairsResult(path, len(rows), considered, metric, below)


def _pair(prompt: list[dict], chosen: str, rejected: str, source: str | None) -> dict:
    row: dict = {"prompt": prompt[0]["content"], "chosen": chosen, "rejected": rejected}
    if len(prompt) > 1:  # a system message or earlier turns: the conversational shape
        row = {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
               "rejected": [{"role": "assistant", "content": rejected}]}
    if source:
        row["source"] = source
    return row


def _lead_metric(run: RunDir) -> str:
    info = run.eval / "compare.json"
    if not info.is_file():
        raise TunesmithError(f"{run.root}: no eval/compare.json; run `tunesmith compare {run.root}` first")
    return json.loads(info.read_text(encoding="utf-8"))["task"]["lead"][0]


def _predictions(run: RunDir, model: str) -> list[dict]:
    path = run.eval / f"predictions_{model}.jsonl"
    if not path.is_file():
        raise TunesmithError(f"{path} not found: evaluate the {model} model first "
                             f"(`tunesmith eval {run.root} --model {model}`)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _test_prompts(run: RunDir) -> dict[int, list[dict]]:
    """Test-split row index -> the prompt messages (alpaca input folded into the last user turn)."""
    from tunesmith.data.prepare import load_prepared

    prompts = {}
    for index, text in enumerate(load_prepared(run.data).test["example"]):
        example = json.loads(text)
        messages = [dict(m) for m in example.get("messages", [])[:-1]]
        if messages and example.get("input"):
            messages[-1]["content"] += "\n\n" + example["input"]
        prompts[index] = messages
    return prompts
