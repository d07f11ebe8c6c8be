"""Token-by-token decoding with a KV cache: what chat, generate and serve all run.

`decode_batch` decodes a fixed set of sequences together (serve/batch.py holds the batch and
its cache); each sequence samples with its own temperature/top-p/seed and stops on an EOS id,
a stop string, or its token limit. The serving engine drives a `Batch` directly so that new
requests can join between steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from tunesmith.serve.batch import Batch, Row, Update
from tunesmith.serve.detokenize import TextStream


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
    finish_reason: str | None = None  # stop | length | cancelled


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
    for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
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

    def advance(self, seq: Sequence, stream: TextStream, token: int, room: int,
                cancelled: bool) -> tuple[str, str | None]:
        """Apply one sampled token to a sequence: (released text, finish reason or None)."""
        if cancelled:
            seq.finish_reason = "cancelled"
            return "", "cancelled"
        seq.generated += 1
        if token in self.stop_ids:
            delta, finish = stream.flush(), "stop"
        else:
            seq.token_ids.append(token)
            delta = stream.push(token)
            finish = "stop" if stream.stopped else "length" if len(seq.token_ids) >= room else None
            if finish == "length":
                delta += stream.flush()
        seq.text = stream.text if finish else stream.text[: stream.released]
        seq.finish_reason = finish
        return delta, finish


def decode_batch(
    model,
    tokenizer,
    sequences: list[Sequence],
    stop_ids: set[int],
    is_cancelled: Callable[[int], bool] = lambda index: False,
) -> Iterator[list[Update]]:
    """Decode `sequences` together; after each step yield its updates, keyed by sequence index."""
    if not sequences:
        return
    decoder = Decoder(model, tokenizer, stop_ids)
    batch = decoder.batch(is_cancelled)
    yield batch.add([decoder.row(index, seq) for index, seq in enumerate(sequences)])
    while batch.rows:
        yield batch.step()


def generate(model, tokenizer, sequences: list[Sequence], stop_ids: set[int]) -> list[Sequence]:
    """Decode `sequences` to the end (no streaming); their output fields are filled in."""
    for _ in decode_batch(model, tokenizer, sequences, stop_ids):
        pass
    return sequences


def _generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator
