"""Token ids -> text, released piece by piece, cut at the first stop string.

Streaming must never show text that later turns out to be part of a stop string, nor half of a
multi-byte character, so the tail that could still become either is held back until it cannot.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"  # what a partial UTF-8 sequence decodes to


class TextStream:
    """The text of one generated sequence, with a stop-string-safe released prefix."""

    def __init__(self, tokenizer, stop_strings: tuple[str, ...] = ()):
        self.tokenizer = tokenizer
        self.stop_strings = tuple(s for s in stop_strings if s)
        self.token_ids: list[int] = []
        self.text = ""  # everything decoded so far (cut at a stop string once one is seen)
        self.released = 0  # characters of `text` already handed out
        self.stopped = False  # a stop string was generated

    def push(self, token_id: int) -> str:
        """Add one generated token; return the newly releasable text (maybe empty)."""
        self.token_ids.append(token_id)
        self.text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        cut = self._first_stop()
        if cut is not None:
            self.text, self.stopped = self.text[:cut], True
            return self.flush()
        return self._release(len(self.text) - self._held_back())

    def flush(self) -> str:
        """Release everything: the sequence is over, so nothing held back can become a stop string."""
        return self._release(len(self.text))

    def _release(self, end: int) -> str:
        if end <= self.released:
            return ""
        delta, self.released = self.text[self.released : end], end
        return delta

    def _first_stop(self) -> int | None:
        found = [i for s in self.stop_strings if (i := self.text.find(s, self.released)) >= 0]
        return min(found) if found else None

    def _held_back(self) -> int:
        """Length of the tail that is a partial character or could still grow into a stop string."""
        text = self.text[self.released :]
        partial = len(text) - len(text.rstrip(REPLACEMENT))
        text = text[: len(text) - partial]
        longest = 0
        for stop in self.stop_strings:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return partial + longest
