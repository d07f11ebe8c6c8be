"""This machine's matmul and element-wise speeds: what turns the estimate's FLOPs and bytes into seconds.

Probed once per hardware key (device, threads, torch version, dtype, model width) and cached, with the
date, in $TUNESMITH_HOME/hardware.json; later runs read the cache. The training header and
train_info.json say which figures were used and where they came from. Re-measure with
`train.remeasure_hardware: true` or by deleting the file. Probes on a machine shared with other work
measure the neighbours too, so the share of the CPU other processes took while probing is recorded
beside the figures and shown when it is large; such figures are probed again on the next run.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import asdict, dataclass, replace

import torch

from tunesmith.train.hardware import DTYPES

CACHE_FILE = "hardware.json"
BUSY_SHOWN = 0.3  # share of the CPU taken by other work while probing above which the header says so
REMEASURE = "re-measure: train.remeasure_hardware=true, or delete the file"


@dataclass(frozen=True)
class Speeds:
    matmul_gflops: float  # a model-shaped matmul in the compute dtype
    elementwise_gbps: float  # an element-wise multiply, bytes read + written
    measured_on: str  # ISO date
    source: str  # "measured now" or "cached"
    path: str  # the cache file
    others_busy: float = 0.0  # share of the CPU other processes took while probing
    key: str = ""
    stored: bool = True  # in the cache file (False: it could not be written)

    def describe(self) -> str:
        where = f"cached in {self.path} on {self.measured_on}" if self.source == "cached" else (
            f"measured now, {'cached in' if self.stored else 'could not write'} {self.path}")
        busy = (f"; other work took {self.others_busy:.0%} of the CPU while probing: figures may be low"
                if self.others_busy > BUSY_SHOWN else "")
        return (f"hardware speeds: matmul {self.matmul_gflops:,.0f} GFLOP/s, element-wise "
                f"{self.elementwise_gbps:,.0f} GB/s ({where}{busy}; {REMEASURE})")

    def as_dict(self) -> dict:
        return {**asdict(self), "remeasure": REMEASURE}


def hardware_speeds(hidden: int, intermediate: int, compute: str, device: str, remeasure: bool = False) -> Speeds:
    """The cached speeds of this hardware key, or new probes (written to the cache) when there are none."""
    from tunesmith.models import tunesmith_home
    from tunesmith.runs import atomic_write_json

    key = "|".join([_device_name(device), str(torch.get_num_threads()), torch.__version__, compute,
                    f"{hidden}x{intermediate}"])
    path = tunesmith_home() / CACHE_FILE
    known = _read_cache(path)
    entry = known.get(key)
    usable = isinstance(entry, dict) and {"matmul_gflops", "elementwise_gbps", "measured_on"} <= set(entry)
    if not remeasure and usable and entry.get("others_busy", 0.0) <= BUSY_SHOWN:  # a busy probe: measured again
        return Speeds(entry["matmul_gflops"], entry["elementwise_gbps"], entry["measured_on"], "cached", str(path),
                      entry.get("others_busy", 0.0), key)
    matmul, elementwise, busy = _probe(hidden, intermediate, compute, device)
    speeds = Speeds(round(matmul, 1), round(elementwise, 2), datetime.date.today().isoformat(), "measured now",
                    str(path), round(busy, 3), key)
    entry = {k: getattr(speeds, k) for k in ("matmul_gflops", "elementwise_gbps", "measured_on", "others_busy")}
    try:
        atomic_write_json(path, {**known, key: entry})
    except OSError:
        return replace(speeds, stored=False)
    return speeds


def _read_cache(path) -> dict:
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _probe(hidden: int, intermediate: int, compute: str, device: str) -> tuple[float, float, float]:
    """(matmul GFLOP/s, element-wise GB/s, share of the CPU other processes took meanwhile)."""
    import psutil

    before, own, began = psutil.cpu_times(), time.process_time(), time.perf_counter()
    matmul, elementwise = matmul_gflops(hidden, intermediate, compute, device), elementwise_gbps(compute, device)
    after, own, wall = psutil.cpu_times(), time.process_time() - own, time.perf_counter() - began
    busy = sum(after) - after.idle - sum(before) + before.idle
    for idle in ("iowait", "guest", "guest_nice"):  # guest time is counted in user time too
        busy -= getattr(after, idle, 0.0) - getattr(before, idle, 0.0)
    others = (busy - own) / max(1e-9, wall * (psutil.cpu_count() or 1))
    return matmul, elementwise, min(1.0, max(0.0, others))


def _device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    import platform

    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_gflops(hidden: int, intermediate: int, compute: str, device: str) -> float:
    """Best speed of a model-shaped matmul on this hardware now, in GFLOP/s."""
    dtype = DTYPES[compute]
    a = torch.randn(2048, hidden, dtype=dtype, device=device)
    b = torch.randn(hidden, intermediate, dtype=dtype, device=device)
    return 2 * a.shape[0] * hidden * intermediate * _best_rate(lambda: a @ b, device) / 1e9


def elementwise_gbps(compute: str, device: str) -> float:
    """Best speed of an element-wise multiply (bytes read + written per second), in GB/s."""
    x = torch.randn(8192, 1536, device=device).to(DTYPES[compute])
    out = torch.empty_like(x)
    return 3 * x.numel() * x.element_size() * _best_rate(lambda: torch.mul(x, x, out=out), device) / 1e9


def _best_rate(op, device: str, tries: int = 7, seconds: float = 0.04) -> float:
    """Calls per second, best of several short tries: a busy neighbour slows some tries, not all."""
    best = 0.0
    for _ in range(tries):
        op()
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            op()
            runs += 1
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, runs / (time.perf_counter() - started))
    return best
