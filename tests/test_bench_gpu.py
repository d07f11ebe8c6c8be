"""bench/bench_gpu.py without a GPU: its refusal, its table, and a smoke run of the whole script on a tiny model."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tiny import save_tiny_model

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPT = BENCH / "bench_gpu.py"


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1", "TUNESMITH_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env)


def _import_bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_gpu
    import bench_train

    return bench_gpu, bench_train


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_stops_with_a_clear_error(tmp_path):
    done = _run("--model", str(tmp_path / "nowhere"), tmp_path=tmp_path)
    assert done.returncode == 1
    assert "no CUDA device found" in done.stderr and "--device cpu" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_table_shows_every_sides_gpu_memory_and_heldout_loss(monkeypatch):
    bench_gpu, _ = _import_bench(monkeypatch)
    tunesmith = {"side": "tunesmith", "tool": "tunesmith", "trained_tokens_per_s": 3000.0, "step_time_median_s": 0.5,
                 "precision": {"compute": "bf16", "frozen_weights": "bf16", "autocast": True}, "attention": "sdpa",
                 "compiled": True, "peak_gpu_allocated_gb": 2.5, "peak_gpu_reserved_gb": 3.25, "peak_rss_gb": 4.0,
                 "heldout_loss": 1.23456}
    trl = {"side": "trl", "tool": "trl", "trained_tokens_per_s": 1500.0, "step_time_median_s": 1.0, "bf16": False,
           "padding_free": False, "gradient_checkpointing": True, "liger": False, "peak_rss_gb": 4.5}
    summary = {"model": "m", "mode": "lora", "gpu": "H200", "torch": "2.x", "flash_attn_installed": False,
               "rows": 16, "heldout_rows": 4, "steps": 2, "warmup": 1, "batch_size": 8, "sides": [tunesmith, trl],
               "base_heldout_loss": 2.0}
    rows = bench_gpu.table(summary).splitlines()
    assert "| tunesmith | 3000 | 2.00x | 0.50 | bf16 (frozen bf16), sdpa, compiled | 2.50 | 3.25 | 4.00 | 1.2346 |" \
        in rows
    assert "| trl | 1500 | 1.00x | 1.00 | fp32, grad. checkpointing | - | - | 4.50 | - |" in rows
    assert "held-out loss before training: 2.0000 (4 rows)" in rows


def test_a_liger_side_is_skipped_and_said_so_where_it_cannot_run(monkeypatch, capsys):
    bench_gpu, _ = _import_bench(monkeypatch)
    monkeypatch.setattr(bench_gpu.importlib.util, "find_spec", lambda name: None if name == "liger_kernel" else name)
    assert bench_gpu.runnable(["tunesmith", "trl-liger", "trl"], "cuda") == ["tunesmith", "trl"]
    assert "trl-liger: skipped: liger_kernel is not installed" in capsys.readouterr().out


def test_trl_sides_are_skipped_and_said_so_where_trl_is_not_installed(monkeypatch, capsys):
    bench_gpu, _ = _import_bench(monkeypatch)
    monkeypatch.setattr(bench_gpu.importlib.util, "find_spec", lambda name: None)
    assert bench_gpu.runnable(["tunesmith", "trl", "trl-best"], "cuda") == ["tunesmith"]
    out = capsys.readouterr().out
    assert "trl: skipped: trl is not installed" in out and "trl-best: skipped" in out


@pytest.mark.slow
def test_a_cpu_smoke_run_trains_every_side_and_reports_numbers(monkeypatch, tmp_path):
    """The whole script on a tiny random Llama: 3 steps per side, figures saved and printed.
    The TRL side runs where trl is installed and ../shared/bench/trl_baseline.py is found ($TUNESMITH_SHARED)."""
    _, bench_train = _import_bench(monkeypatch)
    has_trl = bench_train.TRL_BASELINE.is_file() and importlib.util.find_spec("trl") is not None
    sides = ["tunesmith", "trl"] if has_trl else ["tunesmith"]
    model = save_tiny_model(tmp_path / "tiny")
    out = tmp_path / "gpu.json"
    done = _run("--model", str(model), "--device", "cpu", "--steps", "3", "--warmup", "1", "--batch-size", "2",
                "--heldout", "4", "--compile", "off", "--sides", ",".join([*sides, "trl-liger"]), "--out", str(out),
                tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trl-liger: skipped" in done.stdout
    summary = json.loads(out.read_text())
    assert [s["side"] for s in summary["sides"]] == sides
    assert summary["rows"] == 6 and summary["gpu"].startswith("none")
    for side in summary["sides"]:
        figures = [side["trained_tokens_per_s"], side["step_time_median_s"], side["peak_rss_gb"], side["heldout_loss"]]
        assert all(isinstance(x, float) and math.isfinite(x) and x > 0 for x in figures), side
        assert "peak_gpu_allocated_gb" not in side  # no GPU: no GPU figure, rather than a zero
        assert f"| {side['side']} | {side['trained_tokens_per_s']:.0f} |" in done.stdout
    assert summary["base_heldout_loss"] > 0 and f"{summary['base_heldout_loss']:.4f}" in done.stdout
