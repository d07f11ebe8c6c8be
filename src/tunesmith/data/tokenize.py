"""Tokenize rendered segments into input_ids and labels (prompt masked with -100).

One rule set serves training and generation: segments are tokenized one by one (so the prompt
ids a model is trained on are exactly the ids `encode_prompt` gives at inference), BOS is
added once when the tokenizer would add it and the text does not start with it, and every
trained segment (an assistant turn) ends with EOS.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunesmith.data.templates import Segment, Template

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Encoded:
    """One tokenized example, with what truncation did to it."""

    input_ids: list[int]
    labels: list[int]
    prompt_tokens: int  # tokens outside the trained segments, before truncation
    response_tokens: int  # tokens of the trained segments (answers + EOS), before truncation
    response_kept: int  # response tokens left after truncation


def adds_bos(tokenizer) -> bool:
    """Whether this tokenizer puts BOS in front of plain text by itself (Llama-style)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    ids = tokenizer("a").input_ids
    return bool(ids) and ids[0] == bos


def example_segments(template: Template, example: dict) -> list[Segment]:
    """A canonical example as segments: a raw text is one trained segment, a chat is templated."""
    if "text" in example:
        return [(example["text"], True)]
    return template.segments(example["messages"], example.get("input", ""))


def encode_segments(tokenizer, segments: list[Segment], train_on_prompt: bool = False) -> tuple[list[int], list[int]]:
    """Token ids of the segments, in order, and labels where untrained segments are -100.

    BOS is added once when the tokenizer normally adds it and the text does not already start
    with it (a chat template that writes BOS itself must not get a second one). A trained
    segment that does not end with EOS gets one.
    """
    rules = _Rules.of(tokenizer)
    pieces = [tokenizer(text, add_special_tokens=False).input_ids for text, _ in segments]
    ids, labels, _ = rules.assemble(segments, pieces, train_on_prompt)
    return ids, labels


def encode_prompt(tokenizer, template: Template, messages: list[dict], input_text: str = "") -> list[int]:
    """Prompt ids for generation: the same tokenization training used, up to the answer."""
    ids, _ = encode_segments(tokenizer, template.segments(messages, input_text, add_generation_prompt=True))
    return ids


@dataclass(frozen=True)
class _Rules:
    bos_id: int | None  # set only when the tokenizer adds BOS to plain text
    bos_text: str
    eos_id: int | None

    @classmethod
    def of(cls, tokenizer) -> _Rules:
        bos = tokenizer.bos_token_id if adds_bos(tokenizer) else None
        return cls(bos, tokenizer.bos_token or "", tokenizer.eos_token_id)

    def assemble(
        self, segments: list[Segment], pieces: list[list[int]], train_on_prompt: bool
    ) -> tuple[list[int], list[int], list[bool]]:
        """ids, labels and which tokens belong to the response, from per-segment token ids."""
        ids: list[int] = []
        labels: list[int] = []
        response: list[bool] = []
        starts_with_bos = bool(segments) and bool(self.bos_text) and segments[0][0].startswith(self.bos_text)
        if self.bos_id is not None and not starts_with_bos:
            ids.append(self.bos_id)
            labels.append(self.bos_id if train_on_prompt else IGNORE_INDEX)
            response.append(False)
        for (_, trained), piece in zip(segments, pieces, strict=True):
            if trained and self.eos_id is not None and self.eos_id not in piece[-3:]:
                piece = [*piece, self.eos_id]
            ids += piece
            labels += piece if (trained or train_on_prompt) else [IGNORE_INDEX] * len(piece)
            response += [trained] * len(piece)
        return ids, labels, response


class Encoder:
    """Canonical examples -> truncated input_ids and labels, a batch at a time (one tokenizer call).

    Args:
        max_length: the most tokens kept per example.
        truncation_side: "right" cuts the end (answers first), "left" cuts the start (prompt first).
        window_overlap: `encode_rows` splits a raw text longer than max_length into windows instead
            of cutting it; each window after the first starts with this many (untrained) tokens of the
            one before, so every token of the text is trained in exactly one window.
    """

    def __init__(
        self, tokenizer, template: Template, max_length: int, truncation_side: str = "right",
        train_on_prompt: bool = False, window_overlap: int = 0,
    ):
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length
        self.truncation_side = truncation_side
        self.train_on_prompt = train_on_prompt
        self.window_overlap = window_overlap
        self.rules = _Rules.of(tokenizer)

    def encode_many(self, examples: list[dict]) -> list[Encoded]:
        """One Encoded per example, truncated to max_length."""
        return [self._truncated(*assembled) for _, assembled in self._assembled(examples)]

    def encode_rows(self, examples: list[dict]) -> list[list[Encoded]]:
        """The training rows of each example: one (truncated) for a conversation, windows for a long text."""
        return [self.windows(*assembled) if "text" in example and len(assembled[0]) > self.max_length
                else [self._truncated(*assembled)] for example, assembled in self._assembled(examples)]

    def _assembled(self, examples: list[dict]):
        segment_lists = [example_segments(self.template, e) for e in examples]
        texts = [text for segments in segment_lists for text, _ in segments]
        flat = self.tokenizer(texts, add_special_tokens=False).input_ids if texts else []
        at = 0
        for example, segments in zip(examples, segment_lists, strict=True):
            pieces, at = flat[at: at + len(segments)], at + len(segments)
            yield example, self.rules.assemble(segments, pieces, self.train_on_prompt)

    def windows(self, ids: list[int], labels: list[int], response: list[bool]) -> list[Encoded]:
        """max_length windows, stride max_length - window_overlap; the overlap's labels are masked."""
        size, overlap = self.max_length, self.window_overlap
        out: list[Encoded] = []
        start = 0
        while True:
            end = min(start + size, len(ids))
            context = overlap if start else 0  # tokens the previous window already trained
            window_labels = [IGNORE_INDEX] * context + labels[start + context:end]
            trained = sum(response[start + context:end])
            out.append(Encoded(ids[start:end], window_labels, end - start - trained, trained, trained))
            if end == len(ids):
                return out
            start += size - overlap

    def encode(self, example: dict) -> Encoded:
        return self.encode_many([example])[0]

    def _truncated(self, ids: list[int], labels: list[int], response: list[bool]) -> Encoded:
        response_tokens = sum(response)
        prompt_tokens = len(ids) - response_tokens
        if len(ids) > self.max_length:
            cut = len(ids) - self.max_length
            keep = slice(0, self.max_length) if self.truncation_side == "right" else slice(cut, None)
            ids, labels, response = ids[keep], labels[keep], response[keep]
        return Encoded(ids, labels, prompt_tokens, response_tokens, sum(response))
