"""Measure this machine's matmul peak (GFLOP/s) in fp32 and bf16: the denominator of MFU.

  python bench/matmul_peak.py        # prints one JSON line
"""

from __future__ import annotations

import json
import statistics
import time

import torch


def peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Median GFLOP/s of an n×n @ n×n matmul in `dtype` (on the GPU when there is one)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(3):  # warm-up: oneDNN/cuBLAS pick their kernels
        a @ b
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def main() -> None:
    sizes = (1024, 2048) if not torch.cuda.is_available() else (4096, 8192)
    result = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
        "fp32_gflops": max(peak_gflops(torch.float32, n) for n in sizes),
        "bf16_gflops": max(peak_gflops(torch.bfloat16, n) for n in sizes),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
