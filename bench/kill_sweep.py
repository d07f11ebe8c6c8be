"""Kill anywhere: SIGKILL `prep`, `train` and `eval` at many seeded points, rerun, compare with an uninterrupted run.

    python bench/kill_sweep.py [--kills 30] [--seed 0] [--stages prep,train,eval] [--work DIR]

On a tiny random model (2 layers, built here; no downloads) and a small Q&A file. First an uninterrupted
reference run of each stage, recording every crash point it passes (tunesmith/faults.py). Then each
trial copies the run directory as it was before the stage, starts the stage as a subprocess and kills
it: half the trials at a named crash point inside a write (checkpoint files, checkpoint rename, the
prepared-data swap, atomic file writes, final weights), half after a seeded random delay. The same
command is then rerun to completion and its result compared with the reference: identical prepared
data (rows, template, fingerprint), identical trained weights (CPU, bit for bit), identical metrics.

Prints one line per trial and a summary; exits 1 if any trial's result differs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error",
       "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
STAGES = ("prep", "train", "eval")
# metrics that measure the machine, not the model
UNSTABLE = ("seconds", "time", "per_s", "device", "throughput")


def setup(work: Path) -> Path:
    """A tiny model folder, a Q&A file and a config; returns the config path."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny import save_tiny_model

    model = save_tiny_model(work / "tiny-model")
    data = work / "qa.jsonl"
    rows = [{"question": f"What is {i % 10} plus {i % 7}?", "answer": f"It is {i % 10 + i % 7}."} for i in range(48)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = {
        "model": str(model), "run_dir": str(work / "unused"),
        "data": {"path": str(data), "test_size": 8},
        "train": {"max_steps": 8, "batch_size": 4, "save_every": 2, "keep_checkpoints": 2, "learning_rate": 5e-3,
                  "log_every": 1, "compile": False, "lora": {"r": 4, "alpha": 8, "dropout": 0.1}, "seed": 3},
        "eval": {"max_new_tokens": 8, "batch_size": 4, "few_shot": 0},
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def command(stage: str, config: Path, run_dir: Path) -> list[str]:
    cli = [sys.executable, "-m", "tunesmith"]
    if stage == "eval":
        return [*cli, "eval", str(run_dir), "--model", "tuned"]
    extra = ["--show", "0"] if stage == "prep" else []
    return [*cli, stage, str(config), "--set", f"run_dir={run_dir}", *extra]


def run(cmd: list[str], env: dict, delay: float | None = None) -> tuple[int, str]:
    """Run `cmd`; SIGKILL it after `delay` seconds if still running. Returns (returncode, stderr tail)."""
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    return proc.returncode, err[-2000:]


# ------------------------------------------------------------------ what a stage produced


def prepared_data(run_dir: Path) -> dict:
    from datasets import load_from_disk

    data = run_dir / "data"
    return {
        "train": load_from_disk(str(data / "train")).to_dict(),
        "test": load_from_disk(str(data / "test")).to_dict(),
        "template": (data / "template.json").read_text(),
        "fingerprint": json.loads((data / "fingerprint.json").read_text())["fingerprint"],
    }


def trained_weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    tensors = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    info = json.loads((run_dir / "train_info.json").read_text())
    return {"tensors": {k: v.numpy().tobytes() for k, v in sorted(tensors.items())}, "steps": info["steps"]}


def metrics(run_dir: Path) -> dict:
    tuned = json.loads((run_dir / "eval" / "metrics.json").read_text())["tuned"]
    return {k: v for k, v in tuned.items() if not any(word in k for word in UNSTABLE)}


RESULT = {"prep": prepared_data, "train": trained_weights, "eval": metrics}


# ------------------------------------------------------------------ the sweep


def reference(work: Path, config: Path, stages: tuple[str, ...]) -> tuple[dict, dict, dict, dict]:
    """Uninterrupted runs: the run directory before each stage, each stage's result, points and duration."""
    ref = work / "reference"
    before, results, points, seconds = {}, {}, {}, {}
    for stage in STAGES:
        before[stage] = work / f"before-{stage}"
        if ref.exists():
            shutil.copytree(ref, before[stage], symlinks=True)
        log = work / f"points-{stage}.log"
        started = time.perf_counter()
        code, err = run(command(stage, config, ref), {**ENV, "TUNESMITH_CRASH_LOG": str(log)})
        seconds[stage] = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"reference {stage} failed:\n{err}")
        results[stage] = RESULT[stage](ref)
        points[stage] = Counter(log.read_text().split()) if log.exists() else Counter()
    return before, results, {s: points[s] for s in stages}, seconds


def trial(number: int, stage: str, rng: random.Random, work: Path, config: Path, before: dict, expected: dict,
          points: Counter, seconds: float) -> dict:
    run_dir = work / f"trial-{number:03d}-{stage}"
    if before[stage].exists():
        shutil.copytree(before[stage], run_dir, symlinks=True)
    cmd = command(stage, config, run_dir)
    if points and rng.random() < 0.5:
        name = rng.choice(sorted(points))
        hit = rng.randint(1, points[name])
        where, env, delay = f"{name}#{hit}", {**ENV, "TUNESMITH_KILL_AT": f"{name}:{hit}"}, None
    else:
        delay = rng.uniform(0.5, seconds)
        where, env = f"after {delay:.1f}s", ENV
    code, _ = run(cmd, env, delay)
    killed = code == -signal.SIGKILL
    code, err = run(cmd, ENV)  # the same command, to completion
    if code != 0:
        return {"stage": stage, "where": where, "killed": killed, "ok": False, "why": f"rerun exit {code}: {err}"}
    same = RESULT[stage](run_dir) == expected
    if same:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"stage": stage, "where": where, "killed": killed, "ok": same, "why": "" if same else "result differs"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="trials, spread over the stages")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    stages = tuple(s for s in args.stages.split(",") if s)
    work = args.work or Path(tempfile.mkdtemp(prefix="tunesmith-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    config = setup(work)
    before, results, points, seconds = reference(work, config, stages)
    for stage in stages:
        print(f"reference {stage}: {seconds[stage]:.1f}s, crash points {dict(points[stage])}")
    rng = random.Random(args.seed)
    outcomes = []
    for number in range(args.kills):
        stage = stages[number % len(stages)]
        outcome = trial(number, stage, rng, work, config, before, results[stage], points[stage], seconds[stage])
        outcomes.append(outcome)
        status = "same result" if outcome["ok"] else f"FAILED ({outcome['why'][-300:]})"
        print(f"{number:3d} {stage:5s} killed {outcome['where']:28s} {'' if outcome['killed'] else '(finished first) '}"
              f"-> {status}", flush=True)
    killed = [o for o in outcomes if o["killed"]]
    survived = [o for o in killed if o["ok"]]
    print(f"\nkills survived: {len(survived)} of {len(killed)} "
          f"({len(outcomes) - len(killed)} runs finished before their kill; all {sum(o['ok'] for o in outcomes)} "
          f"of {len(outcomes)} reruns matched)" if len(outcomes) else "no trials")
    print(f"work folder: {work}")
    return 0 if all(o["ok"] for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
