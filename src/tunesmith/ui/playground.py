"""The playground's only contact with models: load a run's base or tuned model, stream one reply.

Everything here goes through the public entry points (`tunesmith.loading.load_for_use` and the chat
session of `tunesmith chat`), so the page generates exactly as the CLI does; re-point these few lines
when the generation engine moves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import TunesmithError

SIDES = ("base", "tuned")


@dataclass(frozen=True)
class Settings:
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 128
    system: str | None = None
    seed: int | None = 0

    def check(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise TunesmithError(f"max_new_tokens must be between 1 and 4096, got {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise TunesmithError("temperature must be >= 0 and top_p in (0, 1]")


class Playground:
    """Loaded models, the `keep` most recently used (loading is the slow part; replies are not)."""

    def __init__(self, keep: int = 2):
        self.keep = keep
        self._models: OrderedDict[tuple[str, str], object] = OrderedDict()
        self._lock = threading.Lock()

    def model(self, run_root: Path, side: str):
        if side not in SIDES:
            raise TunesmithError(f"model must be one of {', '.join(SIDES)}, got {side!r}")
        key = (str(run_root.resolve()), side)
        with self._lock:
            if key not in self._models:
                from tunesmith.loading import load_for_use

                self._models[key] = load_for_use(run_root, base_only=side == "base", device="auto",
                                                 merge_adapter=True)
                while len(self._models) > self.keep:
                    self._models.popitem(last=False)
            self._models.move_to_end(key)
            return self._models[key]

    def stream(self, run_root: Path, side: str, prompt: str, settings: Settings) -> Iterator[str]:
        """The reply to `prompt` (one user turn), piece by piece as it is generated."""
        from tunesmith.use.chat import ChatSession

        settings.check()
        if not prompt.strip():
            raise TunesmithError("the prompt is empty")
        session = ChatSession(self.model(run_root, side), temperature=settings.temperature, top_p=settings.top_p,
                              max_new_tokens=settings.max_new_tokens, system=settings.system, seed=settings.seed)
        yield from session.reply(prompt)
