"""The "start a run" form, generated from the pydantic Config, and its validation through the CLI's path.

The page sends each edited field as text; it becomes a `--set KEY=VALUE` override read by
`tunesmith.config.load_config`, so values are parsed and errors are worded exactly as on the
command line.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from tunesmith.config import Config, load_config
from tunesmith.errors import TunesmithError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HIDDEN = {"run_dir"}  # set from the run's name
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def form_fields(model: type[BaseModel] = Config, prefix: str = "") -> list[dict[str, Any]]:
    """One entry per leaf setting: key, default, description, kind (bool/int/float/str/choice/yaml), choices."""
    fields: list[dict[str, Any]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields += form_fields(annotation, f"{key}.")
            continue
        if key in HIDDEN:
            continue
        kind, choices = _kind(annotation)
        fields.append({"key": key, "section": prefix.rstrip(".") or "run", "default": _jsonable(
            field.get_default(call_default_factory=True)), "description": field.description or "",
            "kind": kind, "choices": choices})
    return fields


def _kind(annotation) -> tuple[str, list]:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal:
        return "choice", list(typing.get_args(annotation))
    if annotation in (bool, int, float, str):
        return annotation.__name__, []
    if len(args) == 1 and args[0] in (int, float, str):
        return args[0].__name__, []  # optional: empty means null
    literals = [v for a in args if typing.get_origin(a) is Literal for v in typing.get_args(a)]
    if bool in args and literals:
        return "choice", [True, False, *literals]
    return "yaml", []


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | list | dict | type(None)) else str(value)


def build_config(runs_dir: Path, name: str, values: dict[str, str]) -> Config:
    """Validate a submitted form: `values` maps dotted keys to text, as typed after `--set KEY=`.

    Raises:
        TunesmithError: A bad run name, or any config error, worded as the CLI words it.
    """
    if not NAME.match(name or ""):
        raise TunesmithError(f"run name {name!r}: use letters, digits, '.', '_' or '-' (at most 64 characters)")
    overrides = [f"{key}={text}" for key, text in values.items() if key not in HIDDEN]
    overrides.append(f"run_dir={(runs_dir / name).resolve()}")
    return load_config(None, overrides)


def data_files(roots: list[Path], limit: int = 50) -> list[str]:
    """Data files a user might train on: under the given folders, two levels deep."""
    found: list[str] = []
    for root in roots:
        for pattern in ("*", "*/*"):
            for path in sorted(root.glob(pattern)):
                if path.suffix in DATA_SUFFIXES and path.is_file() and "/." not in path.as_posix():
                    found.append(str(path))
                if len(found) >= limit:
                    return found
    return found
