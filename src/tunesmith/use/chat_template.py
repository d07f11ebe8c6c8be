"""A tunesmith Template written as a Jinja chat template, so plain transformers renders the same prompt.

`tokenizer.apply_chat_template(messages, add_generation_prompt=True)` on an exported model then
gives exactly the prompt ids `encode_prompt` gave during training (tests check each template).
One case is out of reach: a model's own chat template ('chat') whose answers do not end with
the tokenizer's EOS, where training appends EOS to each earlier answer of a multi-turn history.
"""

from __future__ import annotations

from string import Formatter

from tunesmith.data.templates import ALPACA_HEADER, Template
from tunesmith.data.tokenize import adds_bos

SPLIT_SYSTEM = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}"
)
FIELDS = {"prompt": "message['content']", "input": "''", "system": "system"}


def template_as_jinja(template: Template, tokenizer) -> str:
    """The Jinja chat template equivalent to `template` (the model's own one, for 'chat')."""
    if template.name == "chat" and template.chat_template:
        jinja = template.chat_template
    else:
        jinja = _jinja(template, tokenizer.eos_token or "")
    sample = template.prompt([{"role": "user", "content": "hi"}])
    bos = tokenizer.bos_token
    if adds_bos(tokenizer) and bos and not sample.startswith(bos):  # training put BOS in front: so must this
        jinja = "{{ bos_token }}" + jinja
    return jinja


def _jinja(template: Template, eos: str) -> str:
    first_prefix = _literal(ALPACA_HEADER) if template.name == "alpaca" else "''"
    # training ends every answer with EOS, adding it when the template's end marker lacks it
    answer_end = template.response_end + (eos if eos and eos not in template.response_end else "")
    return (
        SPLIT_SYSTEM
        + "{%- for message in turns -%}"
        + "{%- if message['role'] == 'user' -%}"
        + "{%- if loop.first and system -%}" + _format(template.system_format)
        + "{%- elif loop.first -%}{{ " + first_prefix + " }}{%- endif -%}"
        + _format(template.user_format)
        + "{%- else -%}{{ message['content'] }}" + _format(answer_end)
        + "{%- endif -%}{%- endfor -%}"
    )


def _format(format_string: str) -> str:
    """A Python format string ({prompt}, {input}, {system}) as Jinja output expressions."""
    parts = []
    for literal, name, _spec, _conversion in Formatter().parse(format_string):
        if literal:
            parts.append("{{ " + _literal(literal) + " }}")
        if name is not None:
            parts.append("{{ " + FIELDS[name] + " }}")
    return "".join(parts)


def _literal(text: str) -> str:
    """A Jinja string literal for any text (Jinja unescapes string literals like Python's unicode_escape)."""
    return "'" + text.encode("unicode_escape").decode("ascii").replace("'", "\\'") + "'"
