"""Soak: `tunesmith serve` held at a fixed concurrency on loopback for a bounded time.

    python bench/soak_serve.py [--model tiny|smollm2-135m-instruct|PATH] [--minutes 5] [--concurrency 8]

Starts the server in a subprocess on a free 127.0.0.1 port. `--concurrency` clients then send requests
back to back until `--minutes` have passed (the script stops by itself): chat and plain completions,
streamed and not, greedy and seeded sampling, with short random max_tokens. Prints requests served,
errors (any non-200, broken stream or exception; there should be 0), latency p50/p95/p99, and the
server's resident memory (RSS) after warm-up and at the end, with the growth between. `--model tiny`
builds a 2-layer random model (no download); the default is the embedded model.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import PROMPTS, free_port, start_server, wait_healthy  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of a process from /proc (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request(client: httpx.Client, model: str, rng: random.Random) -> None:
    """One request of a random kind; raises on anything but a complete 200 answer."""
    prompt = rng.choice(PROMPTS)
    common = {"model": model, "max_tokens": rng.randint(1, 24), "temperature": rng.choice([0, 0.8]),
              "seed": rng.randrange(2**32)}
    chat = rng.random() < 0.6
    path = "/v1/chat/completions" if chat else "/v1/completions"
    body = {**common, "messages": [{"role": "user", "content": prompt}]} if chat else {**common, "prompt": prompt}
    if rng.random() < 0.3:
        with client.stream("POST", path, json={**body, "stream": True}) as reply:
            reply.raise_for_status()
            lines = [line for line in reply.iter_lines() if line]
        if lines[-1] != "data: [DONE]":
            raise RuntimeError("stream ended without [DONE]")
        return
    reply = client.post(path, json=body)
    reply.raise_for_status()
    if not reply.json()["choices"]:
        raise RuntimeError("no choices")


def soak(url: str, model: str, concurrency: int, seconds: float, seed: int) -> tuple[list[float], list[str]]:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client_loop(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        with httpx.Client(base_url=url, timeout=120) as client:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    request(client, model, rng)
                    outcome = None
                except Exception as err:  # noqa: BLE001 - every failure is counted, none stops the soak
                    outcome = f"{type(err).__name__}: {err}"[:200]
                with lock:
                    (errors.append(outcome) if outcome else latencies.append(time.perf_counter() - start))

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client_loop, range(concurrency)))
    return latencies, errors


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def tiny_model_folder() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_serve_support import save_lively_model

    return str(save_lively_model(Path(tempfile.mkdtemp(prefix="tunesmith-soak-")) / "tiny"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="'tiny', a model name, folder or run dir")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads in the server (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    model = tiny_model_folder() if args.model == "tiny" else args.model
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(model, port, args.max_batch, args.threads)
    try:
        name = wait_healthy(url, server)
        soak(url, name, args.concurrency, 5.0, args.seed + 1)  # warm-up: allocator and caches settle
        rss_start = rss_mb(server.pid)
        started = time.perf_counter()
        latencies, errors = soak(url, name, args.concurrency, args.minutes * 60, args.seed)
        wall = time.perf_counter() - started
        rss_end = rss_mb(server.pid)
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(30)
    figures = {
        "model": args.model, "concurrency": args.concurrency, "seconds": round(wall, 1),
        "requests": len(latencies), "errors": len(errors), "requests_per_s": round(len(latencies) / wall, 2),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(percentile(latencies, 0.95), 3), "p99_s": round(percentile(latencies, 0.99), 3),
        "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1),
        "rss_growth_mb": round(rss_end - rss_start, 1), "server_alive_at_end": alive,
    }
    print(json.dumps(figures, indent=2))
    for error in sorted(set(errors))[:5]:
        print("error:", error)
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "error_samples": sorted(set(errors))[:20]}, indent=2))
    return 0 if not errors and alive else 1


if __name__ == "__main__":
    sys.exit(main())
