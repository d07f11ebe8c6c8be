"""Prompts that already carry a template: tunesmith wraps them in one again (a double template).

A dataset copied from a course or another tool often has "### Question: ... ### Answer:" or
"<|im_start|>user" written into its prompts. Rendering those with `data.template` puts a second
template around the first; the model then learns (and expects at inference) both. The markers
searched for are common ones plus the chosen template's own.
"""

from __future__ import annotations

import re

from tunesmith.data.templates import Template

COMMON_MARKERS = (
    "### Question:", "### Answer:", "### Instruction:", "### Input:", "### Response:", "<|im_start|>", "<|im_end|>",
    "[INST]", "[/INST]", "<s>", "</s>", "<|user|>", "<|assistant|>", "<start_of_turn>", "<|start_header_id|>",
)
_PLACEHOLDER = re.compile(r"\{(prompt|input|system)\}")


def template_markers(template: Template, special_tokens: list[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    """Common markers, then the template's own: the fixed lines of a format string, or the special tokens
    a chat template writes."""
    own: list[str] = []
    if template.name == "chat":
        sample = template.prompt([{"role": "user", "content": "\x00"}])
        own = [token for token in special_tokens if len(token) > 2 and token in sample]
    elif template.name != "none":
        for part in (template.user_format, template.system_format, template.response_end):
            own += [line.strip() for line in _PLACEHOLDER.sub("\n", part).splitlines() if len(line.strip()) > 2]
    return tuple(dict.fromkeys([*COMMON_MARKERS, *own]))


def first_marker(prompt: str, markers: tuple[str, ...]) -> int:
    """Index in `markers` of the first one found in `prompt`, or -1."""
    return next((i for i, marker in enumerate(markers) if marker in prompt), -1)
