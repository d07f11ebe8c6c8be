"""DPO step time and peak memory: tunesmith's preference objective against TRL's DPOTrainer, one run.

  python bench/bench_dpo.py                                  # LoRA, the embedded model, 12 steps
  python bench/bench_dpo.py --mode full --steps 8 --warmup 2
  python bench/bench_dpo.py --model /tmp/tiny --data pairs.jsonl --max-length 128

Both sides train the same model folder on the same pairs (--data: a JSONL of {prompt, chosen, rejected};
by default pairs made from examples/lumen_faq.jsonl: the question, its answer as chosen and the next
row's answer as rejected) in TRL's conversational shape, so both render them with the model's chat
template. Same settings: DPO sigmoid loss, beta 0.1, batch --batch pairs, learning rate 5e-6 constant, no
warm-up, AdamW, clipping 1.0, max length --max-length, LoRA r=16 alpha=32 on all linear layers (--mode lora:
the reference is the adapter switched off on both sides) or all weights (--mode full: TRL keeps a frozen
reference copy, tunesmith precomputes reference log-probs before the first step, which is not timed).
Precision: each side's default on this machine (tunesmith: train.precision auto; TRL: fp32, or --trl-bf16).
Each side runs in its own process, so the peak RSS figures do not mix. Reported: median step time after
--warmup steps, and peak RSS. The machine's load (`uptime`) before and after is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
EXAMPLE = HERE.parent / "examples" / "lumen_faq.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model spec or folder")
    parser.add_argument("--data", help="JSONL of {prompt, chosen, rejected} (default: pairs from the bundled FAQ)")
    parser.add_argument("--mode", default="lora", choices=["lora", "full"])
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps in all, warm-up included")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the step time")
    parser.add_argument("--batch", type=int, default=4, help="pairs per step")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--sides", default="tunesmith,trl")
    parser.add_argument("--trl-bf16", action="store_true", help="TRL in bf16 autocast (its default is fp32)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one side in this process
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        side = {"tunesmith": tunesmith_side, "trl": trl_side}[args.worker]
        print(json.dumps(side(args, Path(args.work))))
        return
    from tunesmith.models import resolve_model

    model = resolve_model(args.model).path
    work = Path(tempfile.mkdtemp(prefix="bench_dpo_"))
    data = work / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pairs(args)), encoding="utf-8")
    summary = {"load_before": uptime(), "mode": args.mode, "steps": args.steps, "warmup": args.warmup,
               "batch": args.batch, "max_length": args.max_length, "model": str(model), "sides": []}
    for side in args.sides.split(","):
        command = [sys.executable, __file__, "--worker", side, "--work", str(work / side), "--model", str(model),
                   "--data", str(data), "--mode", args.mode, "--steps", str(args.steps), "--warmup",
                   str(args.warmup), "--batch", str(args.batch), "--max-length", str(args.max_length)]
        command += ["--trl-bf16"] if args.trl_bf16 else []
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if done.returncode != 0:
            raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
        result = {"side": side, **json.loads(done.stdout.strip().splitlines()[-1]),
                  "wall_s": round(time.perf_counter() - started, 1)}
        summary["sides"].append(result)
        print(json.dumps(result), flush=True)
    summary["load_after"] = uptime()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"dpo-{args.mode}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table(summary))


def pairs(args) -> list[dict]:
    """Conversational pairs, steps x batch of them (cycled)."""
    if args.data:
        rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        faq = [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines()]
        rows = [{"prompt": a["question"], "chosen": a["answer"], "rejected": b["answer"]}
                for a, b in zip(faq, faq[1:] + faq[:1], strict=True)]
    needed = args.steps * args.batch
    rows = (rows * (needed // len(rows) + 1))[:needed]
    return [{"prompt": [{"role": "user", "content": r["prompt"]}] if isinstance(r["prompt"], str) else r["prompt"],
             **{side: [{"role": "assistant", "content": r[side]}] if isinstance(r[side], str) else r[side]
                for side in ("chosen", "rejected")}} for r in rows]


def tunesmith_side(args, run_dir: Path) -> dict:
    from tunesmith.config import validate_config
    from tunesmith.train import train

    config = validate_config({
        "model": args.model, "run_dir": str(run_dir),
        "data": {"path": args.data, "max_length": args.max_length, "test_size": 1},
        "train": {"method": args.mode, "objective": "dpo", "max_steps": args.steps, "batch_size": args.batch,
                  "log_every": 1, "save_every": args.steps, "learning_rate": 5e-6, "lr_scheduler": "constant",
                  "warmup_ratio": 0.0, "compile": False,
                  "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}},
    })
    started = time.perf_counter()
    train(config, progress=False)
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    tokens = [b["tokens_seen"] - a["tokens_seen"] for a, b in zip([{"tokens_seen": 0}, *steps], steps, strict=False)]
    seconds = [n / r["tokens_per_s"] for n, r in zip(tokens, steps, strict=True)][args.warmup:]
    info = json.loads((run_dir / "train_info.json").read_text())
    return {"tool": "tunesmith", "precision": info["precision"]["compute"], "step_time_median_s": median(seconds),
            "final_loss": steps[-1]["loss"], "reward_accuracy": steps[-1]["reward_accuracy"],
            "peak_rss_gb": peak_rss_gb(), "run_s": round(time.perf_counter() - started, 1)}


def trl_side(args, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_begin(self, *_, **__):
            self.began = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.times.append(time.perf_counter() - self.began)

    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    config = DPOConfig(output_dir=str(out), per_device_train_batch_size=args.batch, max_steps=args.steps,
                       learning_rate=5e-6, lr_scheduler_type="constant", warmup_steps=0, beta=0.1,
                       loss_type=["sigmoid"], max_length=args.max_length, logging_steps=1, report_to=[],
                       save_strategy="no", use_cpu=not torch.cuda.is_available(), bf16=args.trl_bf16,
                       gradient_checkpointing=False, dataloader_num_workers=0, seed=0)
    peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    times = StepTimes()
    trainer = DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=peft if args.mode == "lora" else None, callbacks=[times])
    started = time.perf_counter()
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    accuracy = next((v for k, v in logs[-1].items() if "accuracies" in k), None)
    return {"tool": f"trl {__import__('trl').__version__}", "precision": "bf16" if args.trl_bf16 else "fp32",
            "step_time_median_s": median(times.times[args.warmup:]), "final_loss": logs[-1]["loss"],
            "reward_accuracy": accuracy, "peak_rss_gb": peak_rss_gb(), "run_s": round(time.perf_counter() - started, 1)}


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def table(summary: dict) -> str:
    lines = [f"DPO {summary['mode']}, {summary['steps']} steps ({summary['warmup']} warm-up) of {summary['batch']} "
             f"pairs, max length {summary['max_length']}, {summary['model']}",
             f"load before: {summary['load_before']}", f"load after:  {summary['load_after']}", "",
             "| side | precision | median step (s) | peak RSS (GB) | last loss | reward accuracy |",
             "|---|---|---|---|---|---|"]
    for s in summary["sides"]:
        accuracy = f"{s['reward_accuracy']:.2f}" if isinstance(s.get("reward_accuracy"), float) else "-"
        lines.append(f"| {s['tool']} | {s['precision']} | {s['step_time_median_s']:.3f} | {s['peak_rss_gb']:.2f} | "
                     f"{s['final_loss']:.4f} | {accuracy} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
