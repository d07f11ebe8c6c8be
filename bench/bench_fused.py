"""Fused q/k/v and gate/up projections against separate ones: LoRA (or full) steps of the embedded
model, both models in this process and stepped in turn, so a busy neighbour slows both alike.

  python bench/bench_fused.py                       # LoRA, batch 8 x 128 and 8 x 256 tokens, compiled
  python bench/bench_fused.py --method full --widths 128 --no-compile

Prints the median forward+backward(+optimizer) time per step of each and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tunesmith.config import LoraConfig
from tunesmith.models import resolve_model
from tunesmith.train import methods
from tunesmith.train.fused import fuse_projections
from tunesmith.train.hardware import resolve_precision


def build(method: str, fused: bool, compile_layers: bool):
    precision = resolve_precision("auto", method)
    path = resolve_model("smollm2-135m-instruct").path
    model = methods.load_base(path, method, precision, "sdpa")
    model = methods.prepare_for_training(model, method, LoraConfig(r=16, alpha=32), 0, precision.autocast)
    if fused:
        fuse_projections(model)
    if compile_layers:
        methods.compile_layers(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    return model, optimizer, precision


def step(model, optimizer, precision, ids) -> float:
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.autocast):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="lora", choices=["lora", "full"])
    parser.add_argument("--widths", default="128,256", help="tokens per row, comma-separated (batch 8)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per side and width")
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    sides = {name: build(args.method, name == "fused", not args.no_compile) for name in ("separate", "fused")}
    for width in map(int, args.widths.split(",")):
        ids = torch.randint(0, 49152, (8, width), generator=torch.Generator().manual_seed(width))
        times = {name: [] for name in sides}
        for side in sides.values():  # warm-up (and compile for this width)
            for _ in range(2):
                step(*side, ids)
        for _ in range(args.steps):
            for name, side in sides.items():
                times[name].append(step(*side, ids))
        medians = {name: statistics.median(t) for name, t in times.items()}
        tokens = 8 * width
        print(f"{args.method} batch 8 x {width}: " + " · ".join(
            f"{name} {m:.3f} s ({tokens / m:.0f} tok/s)" for name, m in medians.items())
            + f" · fused/separate time {medians['fused'] / medians['separate']:.3f}", flush=True)


if __name__ == "__main__":
    main()
