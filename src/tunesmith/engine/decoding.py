"""Token-by-token decoding with a KV cache: what eval, compare, chat, generate and serve all run.

`generate` decodes any number of sequences, at most `batch_size` at a time: finished rows leave
the batch (engine/batch.py holds it and its cache) and waiting ones join between steps. Each
sequence samples with its own temperature/top-p/seed and stops on a stop id (EOS), a stop
string, or its token limit. `decode_batch` yields every step's text (streaming); the serving
worker (engine/worker.py) drives a `Batch` directly so that new requests join between steps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

import torch

from tunesmith.engine.batch import Batch, Row, Update, fail
from tunesmith.engine.detokenize import TextStream


@dataclass
class Sequence:
    """One generation request; the output fields are filled in while it is decoded."""

    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop_strings: tuple[str, ...] = ()
    seed: int | None = None
    token_ids: list[int] = field(default_factory=list)  # generated, without the token that stopped it
    generated: int = 0  # tokens the model produced, counting a stop token it ended on (as evaluate counts EOS)
    text: str = ""  # generated text, cut before any stop string
    finish_reason: str | None = None  # stop | length | cancelled | error (OpenAI's words)
    stopped: str | None = None  # eos | stop_string | length | cancelled | error (why, in eval's words)
    error: str | None = None  # what went wrong, when finish_reason is "error"

    @property
    def new_tokens(self) -> int:
        """Tokens the model generated, counting the stop token it ended on."""
        return self.generated

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)


def context_length(model) -> int:
    """The most tokens (prompt + generation) the model attends over."""
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def stop_token_ids(model, tokenizer, stop_strings: tuple[str, ...] = ()) -> set[int]:
    """EOS ids of tokenizer and generation config, plus stop strings that are single special tokens."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (tokenizer.eos_token_id, configured):
        ids.update(value if isinstance(value, list) else [value] if value is not None else [])
    special = set(tokenizer.all_special_tokens) | set(tokenizer.get_added_vocab())
    ids.update(tokenizer.convert_tokens_to_ids(s) for s in stop_strings if s in special)
    return ids


class Decoder:
    """Makes batch rows from sequences and applies each sampled token to its sequence."""

    def __init__(self, model, tokenizer, stop_ids: set[int]):
        self.model, self.tokenizer, self.stop_ids = model, tokenizer, stop_ids
        self.context = context_length(model)

    def batch(self, is_cancelled: Callable = lambda key: False) -> Batch:
        return Batch(self.model, self.advance, is_cancelled)

    def row(self, key, seq: Sequence) -> Row:
        if not seq.prompt_ids:
            raise ValueError("every sequence needs at least one prompt token")
        room = min(seq.max_new_tokens, self.context - len(seq.prompt_ids))
        return Row(key, seq, TextStream(self.tokenizer, seq.stop_strings), _generator(seq.seed), room)

    def rows(self, items: list[tuple[Hashable, Sequence]]) -> tuple[list[Row], list[Update]]:
        """Rows for `items`; one that cannot start (a bad seed, no prompt) finishes as "error" alone."""
        rows, failed = [], []
        for key, seq in items:
            try:
                rows.append(self.row(key, seq))
            except Exception as err:  # noqa: BLE001 - isolate the one bad sequence
                failed.append((key, "", fail(seq, err)))
        return rows, failed

    def advance(self, seq: Sequence, stream: TextStream, token: int, room: int,
                cancelled: bool) -> tuple[str, str | None]:
        """Apply one sampled token to a sequence: (released text, finish reason or None)."""
        if cancelled:
            seq.finish_reason = seq.stopped = "cancelled"
            return "", "cancelled"
        seq.generated += 1
        if token in self.stop_ids:
            delta, seq.stopped = stream.flush(), "eos"
        else:
            seq.token_ids.append(token)
            delta = stream.push(token)
            seq.stopped = "stop_string" if stream.stopped else "length" if len(seq.token_ids) >= room else None
            if seq.stopped == "length":
                delta += stream.flush()
        finish = None if seq.stopped is None else "length" if seq.stopped == "length" else "stop"
        seq.text = stream.text if finish else stream.text[: stream.released]
        seq.finish_reason = finish
        return delta, finish


def decode_batch(
    model,
    tokenizer,
    sequences: list[Sequence],
    stop_ids: set[int],
    is_cancelled: Callable[[int], bool] = lambda index: False,
    *,
    batch_size: int | None = None,
) -> Iterator[list[Update]]:
    """Decode `sequences`; after each step yield its updates, keyed by sequence index.

    At most `batch_size` (default: all) are decoded together; the longest prompts start first and
    waiting sequences join as rows finish (a quarter of the batch at a time, to amortise the join).
    """
    if not sequences:
        return
    size = batch_size or len(sequences)
    decoder = Decoder(model, tokenizer, stop_ids)
    batch = decoder.batch(is_cancelled)
    waiting = deque(sorted(range(len(sequences)), key=lambda i: -len(sequences[i].prompt_ids)))
    while waiting or batch.rows:
        room = size - len(batch.rows) if not batch.rows or batch.can_join else 0
        if waiting and room >= (1 if not batch.rows else min(max(1, size // 4), len(waiting))):
            taken = [waiting.popleft() for _ in range(min(room, len(waiting)))]
            rows, failed = decoder.rows([(i, sequences[i]) for i in taken])
            yield failed + (batch.add(rows) if rows else [])
            continue
        yield batch.step()


def generate(
    model,
    tokenizer,
    sequences: list[Sequence],
    stop_ids: set[int],
    *,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Sequence]:
    """Decode `sequences` to the end (no streaming); their output fields are filled in.

    `progress`, if given, is called with the number of sequences that finished at each step.
    """
    for updates in decode_batch(model, tokenizer, sequences, stop_ids, batch_size=batch_size):
        done = sum(1 for _, _, finish in updates if finish)
        if progress and done:
            progress(done)
    return sequences


def _generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator
