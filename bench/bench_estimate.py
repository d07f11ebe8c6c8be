"""How close train/estimate.py's memory and step-time estimates come to what a short run measures.

Trains the bundled example on the embedded model for a few steps (`tunesmith train`) and prints the
estimate beside the measurement from train_info.json. Run it on a quiet machine: neighbours stretch
the wall clock (the step's CPU time per thread is shown too). These figures used to be asserted in
tests/test_train_embedded.py (memory within 30%, step time within 30-50%), which failed whenever the
machine was loaded; they are a benchmark's numbers, not a test's.

  python bench/bench_estimate.py --steps 10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "tunesmith", "train", str(EXAMPLES / "lumen_faq.yaml"),
                        "--set", f"run_dir={run}", "--set", f"data.path={EXAMPLES / 'lumen_faq.jsonl'}",
                        "--set", f"train.max_steps={args.steps}"], check=True)
        info = json.loads((run / "train_info.json").read_text())
    estimated, measured = info["estimate"], info["measured"]
    own = min(measured["step_time_s"], measured["step_cpu_time_s"])
    print("| quantity | estimated | measured | ratio |\n|---|---:|---:|---:|")
    print(f"| peak memory (GB) | {estimated['peak_memory_gb']:.2f} | {measured['peak_memory_gb']:.2f} | "
          f"{estimated['peak_memory_gb'] / measured['peak_memory_gb']:.2f} |")
    print(f"| step time (s, own CPU time) | {measured['estimated_step_time_s']:.2f} | {own:.2f} | "
          f"{measured['estimated_step_time_s'] / own:.2f} |")
    print(f"cpu share {measured.get('cpu_share')}")


if __name__ == "__main__":
    main()
