"""Show prepared examples as the model sees them: masked (prompt) and trained spans, token boundaries."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby

from tunesmith.data.tokenize import IGNORE_INDEX

MAX_LINES = 12  # per span
MAX_WIDTH = 160
EDGE = 4  # tokens shown either side of each boundary


def preview(dataset, tokenizer, count: int) -> list[str]:
    """The first `count` examples of a prepared split (a packed row shows each example it holds)."""
    shown: list[str] = []
    for row in _examples(dataset):
        if len(shown) >= count:
            break
        shown.append(render(tokenizer, row["input_ids"], row["labels"], f"example {len(shown) + 1} · {row['source']}"))
    return shown


def examples(dataset) -> Iterator[dict]:
    """Each example of a prepared split (a packed row yields each example it holds), with its source."""
    return _examples(dataset)


def token_spans(tokenizer, input_ids: list[int], labels: list[int]) -> list[dict]:
    """Runs of tokens that are all masked or all trained: [{"text", "trained", "tokens"}], in order."""
    spans = []
    for is_trained, group in groupby(zip(input_ids, labels, strict=True), key=lambda pair: pair[1] != IGNORE_INDEX):
        ids = [token for token, _ in group]
        spans.append({"text": tokenizer.decode(ids, skip_special_tokens=False), "trained": is_trained,
                      "tokens": len(ids)})
    return spans


def _examples(dataset) -> Iterator[dict]:
    for row in dataset:
        if "position_ids" not in row or not row["position_ids"]:
            yield row
            continue
        starts = [i for i, p in enumerate(row["position_ids"]) if p == 0] + [len(row["position_ids"])]
        sources = row["source"].split(";")
        for k, (a, b) in enumerate(zip(starts, starts[1:], strict=False)):
            source = f"{sources[k] if k < len(sources) else '?'} (packed row, example {k + 1})"
            yield {"input_ids": row["input_ids"][a:b], "labels": row["labels"][a:b], "source": source}


def render(tokenizer, input_ids: list[int], labels: list[int], title: str) -> str:
    trained = sum(1 for label in labels if label != IGNORE_INDEX)
    lines = [f"── {title} · {len(input_ids)} tokens: {len(input_ids) - trained} masked, {trained} trained ──"]
    for span in token_spans(tokenizer, input_ids, labels):
        lines += _span(span["text"], "train " if span["trained"] else "masked")
    lines.append("tokens at the boundaries: " + _boundaries(tokenizer, input_ids, labels))
    return "\n".join(lines)


def _span(text: str, gutter: str) -> list[str]:
    rows = text.replace("\n", "↵\n").split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    out = [f"{gutter} │ {row[:MAX_WIDTH]}{'…' if len(row) > MAX_WIDTH else ''}" for row in rows[:MAX_LINES]]
    if len(rows) > MAX_LINES:
        out.append(f"{gutter} │ … ({len(rows) - MAX_LINES} more lines)")
    return out


def _boundaries(tokenizer, input_ids: list[int], labels: list[int]) -> str:
    """A few tokens around every switch between masked and trained, and the last ones; ▕ marks the switch."""
    trained = [label != IGNORE_INDEX for label in labels]
    switches = [i for i in range(1, len(trained)) if trained[i] != trained[i - 1]]
    keep = {j for i in switches for j in range(i - EDGE, i + EDGE) if 0 <= j < len(input_ids)}
    keep |= set(range(max(0, len(input_ids) - EDGE), len(input_ids)))
    parts: list[str] = []
    for i in sorted(keep):
        if parts and i - 1 not in keep:
            parts.append("…")
        if i in switches:
            parts.append("▕")
        parts.append(_token(tokenizer, input_ids[i], trained[i]))
    return " ".join(parts)


def _token(tokenizer, token: int, trained: bool) -> str:
    text = repr(tokenizer.decode([token], skip_special_tokens=False))
    if token == tokenizer.eos_token_id:
        text += "=EOS"
    return text if trained else f"[{text}]"
