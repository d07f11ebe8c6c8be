"""Throughput and latency of `tunesmith serve` for 1, 4 and 16 concurrent clients.

    python bench/bench_serve.py [--model smollm2-135m-instruct] [--max-tokens 32] [--per-client 4]

Starts the server in a subprocess on a free 127.0.0.1 port, warms it up, then for each
concurrency level runs that many clients, each sending `--per-client` chat completions one
after another (greedy, fixed max_tokens). Prints a markdown table: requests/s, generated
tokens/s, latency p50/p95, and time to first token (streamed) p50. Stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "List three colours.",
    "Explain what a database index is.",
    "How do plants make food?",
    "Give me a name for a cat.",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, port: int, max_batch: int, threads: int) -> subprocess.Popen:
    code = ("import sys, torch; from tunesmith.serve import serve; "
            "threads = int(sys.argv[4]); threads and torch.set_num_threads(threads); "
            "serve(sys.argv[1], port=int(sys.argv[2]), max_batch=int(sys.argv[3]), log_level='warning')")
    env = {**os.environ, "TUNESMITH_API_KEY": ""}
    return subprocess.Popen([sys.executable, "-c", code, model, str(port), str(max_batch), str(threads)], env=env)


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        try:
            health = httpx.get(url + "/health", timeout=2).json()
            if health["status"] == "ok":
                return health["model"]
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not come up")


def one_request(client: httpx.Client, model: str, prompt: str, max_tokens: int, stream: bool) -> tuple[float, int]:
    """(seconds until the full answer, or until the first token when streaming; completion tokens)."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0}
    start = time.perf_counter()
    if not stream:
        reply = client.post("/v1/chat/completions", json=body)
        reply.raise_for_status()
        return time.perf_counter() - start, reply.json()["usage"]["completion_tokens"]
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as reply:
        for line in reply.iter_lines():
            chunk = json.loads(line[6:]) if line.startswith("data: {") else {}
            if any(choice["delta"].get("content") for choice in chunk.get("choices", [])):
                return time.perf_counter() - start, 0
    return time.perf_counter() - start, 0


def run_level(url: str, model: str, clients: int, per_client: int, max_tokens: int) -> dict:
    def client_run(index: int) -> list[tuple[float, int]]:
        with httpx.Client(base_url=url, timeout=600) as client:
            return [one_request(client, model, PROMPTS[(index + i) % len(PROMPTS)], max_tokens, False)
                    for i in range(per_client)]

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for rs in pool.map(client_run, range(clients)) for r in rs]
    wall = time.perf_counter() - start
    latencies = sorted(r[0] for r in results)
    with httpx.Client(base_url=url, timeout=600) as client:
        ttft = [one_request(client, model, PROMPTS[i % len(PROMPTS)], max_tokens, True)[0] for i in range(3)]
    return {
        "clients": clients, "requests": len(results), "seconds": round(wall, 2),
        "requests_per_s": round(len(results) / wall, 2),
        "tokens_per_s": round(sum(r[1] for r in results) / wall, 1),
        "p50_s": round(statistics.median(latencies), 3),
        "p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3),
        "ttft_p50_s": round(statistics.median(ttft), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--levels", default="1,4,16", help="concurrency levels, comma separated")
    parser.add_argument("--per-client", type=int, default=4, help="requests each client sends")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads in the server (0: torch's default); 1 is best on a busy machine")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args.model, port, args.max_batch, args.threads)
    try:
        name = wait_healthy(url, server)
        run_level(url, name, 1, 1, args.max_tokens)  # warm-up
        rows = [run_level(url, name, int(c), args.per_client, args.max_tokens) for c in args.levels.split(",")]
    finally:
        server.terminate()
        server.wait(30)
    load = os.getloadavg()
    print(f"\nmodel {args.model}, max_tokens {args.max_tokens}, max_batch {args.max_batch}, "
          f"threads {args.threads or 'default'}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| clients | requests | req/s | gen tok/s | p50 latency s | p95 latency s | TTFT p50 s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['clients']} | {r['requests']} | {r['requests_per_s']} | {r['tokens_per_s']} | {r['p50_s']} "
              f"| {r['p95_s']} | {r['ttft_p50_s']} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "loadavg": load, "results": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
