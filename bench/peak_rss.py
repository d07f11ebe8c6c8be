"""Peak resident memory of this process, sampled in a thread (psutil), optionally as a timeline."""

from __future__ import annotations

import threading
import time

import psutil


class PeakRss:
    """`peak` is the largest RSS seen (bytes); with `timeline`, `samples` holds (seconds since start, RSS)."""

    def __init__(self, every: float = 0.02, timeline: bool = False) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self.every = every
        self.samples: list[tuple[float, int]] | None = [] if timeline else None
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss = self.process.memory_info().rss
        self.peak = max(self.peak, rss)
        if self.samples is not None:
            self.samples.append((round(time.perf_counter() - self._started, 2), rss))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> PeakRss:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
