"""Prep throughput: tunesmith's `prep` stage against TRL's SFTTrainer dataset preparation, side by side.

  python bench/bench_prep.py --data /work/shared/data/gsm8k/train.jsonl
  python bench/bench_prep.py --data /tmp/rows_1m.jsonl --sides tunesmith --num-proc 2   # the 1M-row memory run

Each side runs in its own process (so memory figures do not mix) on the same question/answer
JSONL with the same tokenizer (the embedded SmolLM2) and its chat template, max length 512:
- tunesmith: `prepare(config, force=True)`, the whole stage — read the file, template, tokenize,
  mask, split, run every check, write train/test to disk.
- trl: what SFTTrainer does before training — load the JSONL with `datasets`, turn rows into
  conversational prompt/completion, then `SFTTrainer._prepare_dataset` (chat template,
  tokenize, completion mask -> labels, truncate). The trainer is built once beforehand on a tiny
  dataset (that needs the model); only the preparation of the full data is timed.
- trl-text: the same with plain-text prompt/completion (no chat template), as in
  /work/shared/bench/trl_baseline.py.
Reported: examples/s (rows prepared per second of wall time), seconds, peak RSS of the process
and of its largest worker, and the peak of all processes together while timed (sampled). Results
go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MODEL = "smollm2-135m-instruct"
RESULTS = Path(__file__).parent / "results"


class PeakMemory:
    """Peak memory of this process and its workers while a block runs, sampled.

    `rss` sums resident sets (an upper bound: pages that forked workers share with their parent
    are counted once per process); `pss` shares such pages out proportionally (Linux only).
    """

    def __enter__(self):
        import psutil

        self.process = psutil.Process()
        self.rss = self.pss = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _tree(self):
        return [self.process, *self.process.children(recursive=True)]

    def _sample(self, with_pss: bool) -> None:
        import psutil

        try:
            tree = self._tree()
            self.rss = max(self.rss, sum(p.memory_info().rss for p in tree))
            if with_pss:
                self.pss = max(self.pss, sum(getattr(p.memory_full_info(), "pss", 0) for p in tree))
        except psutil.Error:  # a worker ended between listing and reading
            pass

    def _watch(self) -> None:
        tick = 0
        while not self.done.wait(0.1):
            tick += 1
            self._sample(with_pss=tick % 5 == 0)

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self._sample(with_pss=True)


def run_tunesmith(data: str, num_proc: int) -> dict:
    from tunesmith.config import validate_config
    from tunesmith.data.prepare import prepare
    from tunesmith.models import load_tokenizer, resolve_model

    load_tokenizer(resolve_model(MODEL).path)  # imports (torch, transformers) before the clock, as on the TRL side

    with tempfile.TemporaryDirectory(prefix="bench-prep-") as run_dir:
        config = validate_config({"model": MODEL, "run_dir": run_dir, "data": {
            "path": data, "max_length": 512, "num_proc": num_proc, "template": "auto"}})
        started = time.perf_counter()
        with PeakMemory() as memory:
            result = prepare(config, force=True)
        seconds = time.perf_counter() - started
        # line 1 of the file is the first row of train or of test (both keep file order)
        first = next((split[0] for split in (result.train, result.test) if split[0]["source"].endswith(":1")), None)
        return _result("tunesmith", result.report["rows_loaded"], seconds, memory, first,
                       {"train": len(result.train), "test": len(result.test)})


def run_trl(data: str, num_proc: int, conversational: bool) -> dict:
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from tunesmith.models import resolve_model

    model_dir = str(resolve_model(MODEL).path)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as work:
        args = SFTConfig(output_dir=work, max_length=512, dataset_num_proc=num_proc if num_proc > 1 else None,
                         report_to="none", use_cpu=True)
        tiny = _as_prompt_completion(load_dataset("json", data_files=data, split="train[:8]", cache_dir=work),
                                     conversational)
        trainer = SFTTrainer(model=model_dir, args=args, train_dataset=tiny, processing_class=tokenizer)
        started = time.perf_counter()
        with PeakMemory() as memory:
            raw = load_dataset("json", data_files=data, split="train", cache_dir=f"{work}/full")
            rows = _as_prompt_completion(raw, conversational, num_proc)
            prepared = trainer._prepare_dataset(rows, tokenizer, args, False, None, "train")
        seconds = time.perf_counter() - started
        first = {"input_ids": prepared[0]["input_ids"], "labels": prepared[0]["labels"]}
        return _result("trl" if conversational else "trl-text", len(prepared), seconds, memory, first, {})


def _as_prompt_completion(dataset, conversational: bool, num_proc: int = 1):
    def convert(row):
        if conversational:
            return {"prompt": [{"role": "user", "content": row["question"]}],
                    "completion": [{"role": "assistant", "content": row["answer"]}]}
        return {"prompt": row["question"], "completion": row["answer"]}

    return dataset.map(convert, remove_columns=dataset.column_names, num_proc=num_proc if num_proc > 1 else None)


def _result(side: str, examples: int, seconds: float, memory: PeakMemory, first, extra: dict) -> dict:
    return {
        "side": side, "examples": examples, "seconds": round(seconds, 2),
        "examples_per_s": round(examples / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "all_processes_rss_mb": round(memory.rss / 1e6),
        "all_processes_pss_mb": round(memory.pss / 1e6),
        "first_example": {"input_ids": list(first["input_ids"]), "labels": list(first["labels"])} if first else None,
        **extra,
    }


def compare(args) -> None:
    rows = []
    for side in args.sides.split(","):
        command = [sys.executable, __file__, "--data", args.data, "--side", side, "--num-proc", str(args.num_proc)]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            print(f"{side} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(lines[-1]))
    print(f"data: {args.data}, num_proc {args.num_proc}, {os.cpu_count()} CPUs\n")
    print("| side | examples | seconds | examples/s | peak RSS MB (main / largest worker) "
          "| peak MB, all processes (RSS sum / PSS sum) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['side']} | {r['examples']:,} | {r['seconds']} | {r['examples_per_s']:,} | "
              f"{r['peak_rss_mb']:,} / {r['worker_peak_rss_mb']:,} | "
              f"{r['all_processes_rss_mb']:,} / {r['all_processes_pss_mb']:,} |")
    _same_tokens(rows)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"prep-{Path(args.data).stem}-np{args.num_proc}.json"
    out.write_text(json.dumps([{k: v for k, v in r.items() if k != "first_example"} for r in rows], indent=2))
    print(f"\nsaved {out}")


def _same_tokens(rows: list[dict]) -> None:
    """Do tunesmith and TRL (chat) produce the same ids and labels for the file's first row?"""
    by_side = {r["side"]: r for r in rows}
    if "tunesmith" in by_side and "trl" in by_side:
        ours, theirs = by_side["tunesmith"]["first_example"], by_side["trl"]["first_example"]
        if ours and theirs:
            print(f"\nfirst example identical in both (ids, labels): "
                  f"{ours['input_ids'] == theirs['input_ids']}, {ours['labels'] == theirs['labels']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="question/answer JSONL")
    parser.add_argument("--sides", default="tunesmith,trl,trl-text")
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "tunesmith":
        print(json.dumps(run_tunesmith(args.data, args.num_proc)))
    elif args.side in ("trl", "trl-text"):
        print(json.dumps(run_trl(args.data, args.num_proc, conversational=args.side == "trl")))
    else:
        compare(args)


if __name__ == "__main__":
    main()
