"""Row shapes: recognise them, and turn one raw row into the canonical example.

Canonical example (docs/ARCHITECTURE.md): {"messages": [...], "input": str} or {"text": str}.
Also accepted: TRL's conversational prompt/completion (both lists of messages), message content
as a list of parts (OpenAI / multimodal style; the text parts are joined, any other part is
refused), and OpenAI fine-tuning's per-message `weight` (an assistant message with weight 0 is
kept as context but not trained: its canonical message carries "weight": 0).
A row that cannot be converted raises `RowProblem` with a short, user-facing reason; the
loader attaches the file and line.
"""

from __future__ import annotations

from typing import Any

from tunesmith.errors import TunesmithError

# format -> (prompt field, response field); alpaca also reads "input", every chat shape "system"
FIELDS: dict[str, tuple[str, ...]] = {
    "qa": ("question", "answer"),
    "alpaca": ("instruction", "output"),
    "prompt_completion": ("prompt", "completion"),
    "messages": ("messages",),
    "text": ("text",),
    "preference": ("prompt", "chosen", "rejected"),  # data/preference.py
}
OPTIONAL = {"qa": ("system",), "alpaca": ("input", "system"), "prompt_completion": ("system",)}
GUESS_ORDER = ("preference", "messages", "alpaca", "prompt_completion", "qa", "text")
ROLE_ALIASES = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant"}
SHAREGPT_COLUMN = "conversations"  # ShareGPT's name for the messages column


class RowProblem(ValueError):
    """Why one row cannot be used (without the where, which the loader knows)."""


def known_fields() -> set[str]:
    names = {name for fields in FIELDS.values() for name in fields}
    return names | {name for fields in OPTIONAL.values() for name in fields}


def check_fields(fields: dict[str, str]) -> None:
    unknown = sorted(set(fields) - known_fields())
    if unknown:
        raise TunesmithError(
            f"data.fields: unknown field(s) {', '.join(unknown)}; map these names onto your columns: "
            + ", ".join(sorted(known_fields()))
        )


def guess_format(columns: list[str], fields: dict[str, str]) -> tuple[str, str]:
    """(format, why) from a row's column names, after applying the data.fields mapping."""
    present = set(columns)
    for fmt in GUESS_ORDER:
        needed = [fields.get(name, name) for name in FIELDS[fmt]]
        if all(column in present for column in needed):
            return fmt, f"guessed from the columns {', '.join(needed)}"
    if {fields.get(name, name) for name in ("chosen", "rejected")} <= present:
        return "preference", "guessed from the columns chosen, rejected (whole conversations)"
    if "messages" not in fields and SHAREGPT_COLUMN in present:
        return "messages", f"guessed from the column {SHAREGPT_COLUMN} (ShareGPT)"
    raise TunesmithError(
        f"data.format: cannot tell the row shape from the columns {', '.join(sorted(present)) or '(none)'}; "
        "expected question/answer, instruction/output, prompt/completion, messages or text. "
        "Map your columns with data.fields, e.g. fields: {question: my_q, answer: my_a}, or set data.format"
    )


def fields_for(fmt: str, fields: dict[str, str], columns: list[str]) -> dict[str, str]:
    """Canonical field name -> column to read, for this format."""
    mapping = {name: fields.get(name, name) for name in FIELDS[fmt] + OPTIONAL.get(fmt, ())}
    if fmt == "messages" and "messages" not in fields and "messages" not in columns and SHAREGPT_COLUMN in columns:
        mapping["messages"] = SHAREGPT_COLUMN
    return mapping


def canonical(row: Any, fmt: str, columns: dict[str, str], system_prompt: str | None = None) -> dict:
    """One raw row -> the canonical example. Raises RowProblem."""
    if not isinstance(row, dict):
        raise RowProblem(f"expected an object with fields, got {_kind(row)}")
    if fmt == "preference":
        from tunesmith.data import preference

        return preference.canonical(row, columns, system_prompt)
    if fmt == "text":
        return {"text": _text(row, columns, "text")}
    if fmt == "messages":
        messages = _messages(row, columns["messages"])
    elif fmt == "prompt_completion" and isinstance(row.get(columns["prompt"]), list):
        messages = _conversational(row, columns["prompt"], columns["completion"])
    else:
        prompt_field, response_field = FIELDS[fmt]
        messages = [
            {"role": "user", "content": _text(row, columns, prompt_field)},
            {"role": "assistant", "content": _text(row, columns, response_field)},
        ]
        system = _text(row, columns, "system", required=False)
        if system:
            messages.insert(0, {"role": "system", "content": system})
    if system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    input_text = _text(row, columns, "input", required=False) if fmt == "alpaca" else ""
    return {"messages": messages, "input": input_text}


def _text(row: dict, columns: dict[str, str], name: str, required: bool = True) -> str:
    column = columns[name]
    value = row.get(column)
    label = f"'{name}'" if column == name else f"'{name}' (column '{column}')"
    if value is None:
        if not required:
            return ""
        raise RowProblem(f"field {label} is null, expected a string" if column in row else f"missing field {label}")
    if not isinstance(value, str):
        raise RowProblem(f"field {label} is {_kind(value)}, expected a string")
    if required and not value.strip():
        raise RowProblem(f"empty {label}")
    return value


def _conversational(row: dict, prompt_column: str, completion_column: str) -> list[dict]:
    """TRL's conversational prompt/completion: the prompt's messages, then the completion's."""
    completion = row.get(completion_column)
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    if not isinstance(completion, list) or not completion:
        raise RowProblem(f"field '{completion_column}' is {_kind(completion)}, expected a list of messages "
                         "(the prompt is one)")
    return _checked_turns(row[prompt_column] + completion)


def _messages(row: dict, column: str) -> list[dict]:
    turns = row.get(column)
    if turns is None:
        raise RowProblem(f"missing field '{column}'")
    if not isinstance(turns, list) or not turns:
        raise RowProblem(f"field '{column}' is {_kind(turns)}, expected a non-empty list of {{role, content}}")
    return _checked_turns(turns)


def _checked_turns(turns: list) -> list[dict]:
    messages = [_message(turn, number) for number, turn in enumerate(turns, 1)]
    roles = [m["role"] for m in messages]
    body = roles[1:] if roles[0] == "system" else roles
    if not body or body != ["user", "assistant"] * (len(body) // 2):
        if body and body[-1] == "user" and body[:-1] == ["user", "assistant"] * (len(body) // 2):
            raise RowProblem("the last message is the user's: a training conversation ends with the assistant's answer")
        raise RowProblem(f"roles must alternate user/assistant after an optional system message, got {roles}")
    if all(m.get("weight") == 0 for m in messages if m["role"] == "assistant"):
        raise RowProblem("every assistant message has weight 0: nothing in this conversation is trained")
    return messages


def _message(turn: Any, number: int) -> dict:
    if not isinstance(turn, dict):
        raise RowProblem(f"message {number} is {_kind(turn)}, expected {{role, content}}")
    role = turn.get("role", turn.get("from"))
    content = turn.get("content", turn.get("value"))
    role = ROLE_ALIASES.get(role, role)
    if role not in ("system", "user", "assistant"):
        raise RowProblem(f"message {number} has role {role!r}; expected system, user or assistant")
    if isinstance(content, list):
        content = _text_parts(content, number, role)
    if not isinstance(content, str):
        raise RowProblem(f"message {number} ({role}) has content {_kind(content)}, expected a string")
    if role != "system" and not content.strip():
        raise RowProblem(f"message {number} ({role}) is empty")
    message = {"role": role, "content": content}
    weight = turn.get("weight")
    if role == "assistant" and weight is not None:
        if weight not in (0, 1) or isinstance(weight, bool):
            raise RowProblem(f"message {number} (assistant) has weight {weight!r}; expected 0 (not trained) or 1")
        if weight == 0:
            message["weight"] = 0
    return message


def _text_parts(parts: list, number: int, role: str) -> str:
    """Content given as parts, [{"type": "text", "text": ...}, ...]: the text parts joined."""
    texts = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            shown = f"a part of type '{kind}'" if kind else f"a part that is {_kind(part)}"
            raise RowProblem(f"message {number} ({role}) has {shown}; tunesmith trains on text only: keep the "
                             "{\"type\": \"text\", \"text\": ...} parts and remove the others")
        texts.append(part["text"])
    return "".join(texts)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object", str: "a string"}
    return names.get(type(value), type(value).__name__)
