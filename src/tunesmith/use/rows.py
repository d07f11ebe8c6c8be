"""Prompts from any file prep reads (JSONL, JSON, CSV/TSV, Parquet, .txt, folders), one per row.

Files are read by prep's readers (tunesmith.data.readers), so line numbers match what prep
reports. A row gives its prompt as `messages` (a conversation; a final assistant turn is
dropped), `prompt`, `question`, `instruction` (+ optional `input`), or `text` (continued as
is, no template); `system` adds a system message. A row that cannot be used becomes a
`PromptRow` with an `error`, and the other rows go on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.formats import ROLE_ALIASES, SHAREGPT_COLUMN
from tunesmith.errors import TunesmithError

PROMPT_FIELDS = ("messages", SHAREGPT_COLUMN, "prompt", "question", "instruction", "text")


@dataclass
class PromptRow:
    source: str  # "file:line" (row number for Parquet and saved datasets)
    row: Any  # the row as read (None when it could not be read)
    messages: list[dict] | None = None  # conversation ending with the user turn to answer
    input_text: str = ""  # alpaca's `input`
    text: str | None = None  # raw text to continue (no template)
    error: str | None = None


def read_prompt_rows(path: Path) -> list[PromptRow]:
    """Every row of the file, with its prompt or the reason it has none."""
    from tunesmith.data.readers import read_rows

    try:
        raw_rows = list(read_rows(Path(path), str(path)))
    except TunesmithError as err:
        raise TunesmithError(str(err).replace("data.path: ", "--input ", 1)) from None
    rows = [PromptRow(raw.source, raw.data, error=raw.problem) if raw.problem else _to_prompt(raw.source, raw.data)
            for raw in raw_rows]
    if rows and all(row.error and row.error.startswith("no prompt") for row in rows):
        columns = sorted(rows[0].row) if isinstance(rows[0].row, dict) else []
        raise TunesmithError(f"--input {path}: no row has a prompt; found the fields {columns}, "
                             f"expected one of {', '.join(PROMPT_FIELDS)}")
    return rows


def _to_prompt(source: str, row: Any) -> PromptRow:
    if not isinstance(row, dict):
        return PromptRow(source, row, error=f"expected an object with a prompt field, got {type(row).__name__}")
    try:
        return PromptRow(source, row, **_prompt_fields(row))
    except ValueError as err:
        return PromptRow(source, row, error=str(err))


def _prompt_fields(row: dict) -> dict[str, Any]:
    field = next((name for name in PROMPT_FIELDS if row.get(name) not in (None, "")), None)
    if field is None:
        raise ValueError(f"no prompt: expected one of the fields {', '.join(PROMPT_FIELDS)}")
    value = row[field]
    system = row.get("system")
    if system is not None and not isinstance(system, str):
        raise ValueError("field 'system' must be text")
    if field in ("messages", SHAREGPT_COLUMN):
        return {"messages": _conversation(value, system)}
    if not isinstance(value, str):
        raise ValueError(f"field '{field}' must be text, got {type(value).__name__}")
    if field == "text":
        return {"text": value}
    head = [{"role": "system", "content": system}] if system else []
    input_text = (row.get("input") or "") if field == "instruction" else ""
    if not isinstance(input_text, str):
        raise ValueError("field 'input' must be text")
    return {"messages": head + [{"role": "user", "content": value}], "input_text": input_text}


def _conversation(value: Any, system: str | None) -> list[dict]:
    if isinstance(value, str):  # a CSV cell holding JSON
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("field 'messages' is not a JSON list of {role, content} objects") from None
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise ValueError("field 'messages' must be a list of {role, content} objects")
    messages = [_message(turn) for turn in value]
    if messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]  # the reference answer
    if system and not (messages and messages[0]["role"] == "system"):
        messages = [{"role": "system", "content": system}] + messages
    if not messages or messages[-1]["role"] != "user":
        raise ValueError("field 'messages' must end with a user message (or a user message and its answer)")
    return messages


def _message(turn: dict) -> dict[str, str]:
    """{role, content}, also from ShareGPT's {from, value} with its role names."""
    role = turn.get("role", turn.get("from"))
    content = turn.get("content", turn.get("value"))
    if not isinstance(role, str) or not isinstance(content, str):
        raise ValueError("every message needs a text 'role' and 'content'")
    return {"role": ROLE_ALIASES.get(role, role), "content": content}
