"""The engine as a service: one worker thread runs the model; callers (the HTTP server) queue work
from an asyncio loop and await events.

Concurrent requests wait in one queue. The worker decodes up to `max_batch` sequences together
(engine/batch.py, the same batch `generate` uses), letting queued ones join the running batch
between steps as others finish (continuous batching), and sends each step's text to the asyncio
loop of the request that asked for it. A sequence that fails alone (a bad seed, a detokenising
error) fails only its own request; a failing forward pass fails the requests in that batch; the
worker goes on either way.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tunesmith.engine.decoding import Decoder, Sequence

log = logging.getLogger("tunesmith.serve")


class EngineBusy(Exception):
    """The queue is full; the client should retry later."""


@dataclass(frozen=True)
class Event:
    index: int  # which sequence of the job
    delta: str  # new text
    finish_reason: str | None = None  # set on the last event of a sequence
    completion_tokens: int = 0  # tokens generated (a final EOS included), on the last event
    error: str | None = None


@dataclass
class Job:
    """The sequences of one HTTP request and the queue their events arrive on."""

    sequences: list[Sequence]
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: bool = False


class Engine:
    def __init__(self, model, tokenizer, stop_ids: set[int], *, max_batch: int = 8, max_queue: int = 256,
                 batch_wait_s: float = 0.002):
        self.decoder = Decoder(model, tokenizer, stop_ids)
        self.max_batch, self.max_queue, self.batch_wait_s = max_batch, max_queue, batch_wait_s
        self._pending: deque[tuple[Job, int]] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.running = 0  # sequences in the batch being decoded

    # ------------------------------------------------------------------ asyncio side

    def submit(self, sequences: list[Sequence]) -> Job:
        """Queue the sequences of one request (call from the event loop)."""
        job = Job(sequences, asyncio.get_running_loop())
        with self._ready:
            if len(self._pending) + len(sequences) > self.max_queue:
                raise EngineBusy(f"{len(self._pending)} sequences are waiting")
            self._pending.extend((job, index) for index in range(len(sequences)))
            self._ready.notify()
        self.start()
        return job

    async def events(self, job: Job) -> AsyncIterator[Event]:
        """Events of `job` until every sequence finished; leaving early cancels the rest."""
        remaining = len(job.sequences)
        try:
            while remaining:
                event = await job.events.get()
                if event.error is not None or event.finish_reason is not None:
                    remaining -= 1
                yield event
        finally:
            job.cancelled = remaining > 0

    @property
    def queued(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with self._ready:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._work, name="tunesmith-engine", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ worker thread

    def _work(self) -> None:
        batch = None
        while True:
            running = batch is not None and bool(batch.rows)
            if not running:
                room = self.max_batch
            else:  # a batch whose cache cannot take newcomers finishes first
                room = self.max_batch - len(batch.rows) if batch.can_join else 0
            arrivals = self._take(room, wait=not running)
            if arrivals is None:
                if running:
                    self._fail([row.key for row in batch.rows], RuntimeError("the server is shutting down"))
                return
            if not running:
                batch = self.decoder.batch(is_cancelled=lambda key: self._stopping or key[0].cancelled)
            try:
                if arrivals:
                    rows, failed = self.decoder.rows([(key, key[0].sequences[key[1]]) for key in arrivals])
                    self._publish(failed)
                    if rows:
                        self._publish(batch.add(rows))
                if batch.rows:
                    self._publish(batch.step())
            except Exception as err:  # noqa: BLE001 - one bad batch must not kill the server
                log.exception("generation failed")
                self._fail([row.key for row in batch.rows] + arrivals, err)
                batch = None
            self.running = len(batch.rows) if batch is not None else 0

    def _take(self, room: int, wait: bool) -> list[tuple[Job, int]] | None:
        """Up to `room` live queued sequences (waiting for some when idle), or None when stopping."""
        with self._ready:
            while wait and not self._pending and not self._stopping:
                self._ready.wait(timeout=1.0)
            if self._stopping:
                return None
            short = wait and len(self._pending) < room
        if short:  # let requests that arrive together start together
            time.sleep(self.batch_wait_s)
        taken: list[tuple[Job, int]] = []
        with self._ready:
            while self._pending and len(taken) < room:
                job, index = self._pending.popleft()
                if not job.cancelled:
                    taken.append((job, index))
        return taken

    def _publish(self, updates) -> None:
        for (job, index), delta, finish in updates:
            sequence = job.sequences[index]
            if finish == "error":
                self._send(job, Event(index, "", error=f"generation failed: {sequence.error}"))
                continue
            self._send(job, Event(index, delta, finish, sequence.generated if finish else 0))

    def _fail(self, keys: list[tuple[Job, int]], err: Exception) -> None:
        for job, index in keys:
            if job.sequences[index].finish_reason is None:
                self._send(job, Event(index, "", error=f"generation failed: {type(err).__name__}: {err}"))

    @staticmethod
    def _send(job: Job, event: Event) -> None:
        try:
            job.loop.call_soon_threadsafe(job.events.put_nowait, event)
        except RuntimeError:  # the request's event loop is gone (server shutting down)
            job.cancelled = True
