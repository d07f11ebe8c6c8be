"""Prompt templates: one rendering path for training, evaluation, chat and serving.

A conversation (`messages`: role/content dicts, optional system first, user and assistant
alternating) renders to *segments*: (text, trained) pairs. Training tokenizes every segment
and masks the untrained ones; inference renders the same conversation up to the point where
the assistant speaks. Both go through `Template.segments`, so they cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from tunesmith.errors import TunesmithError

TEMPLATE_FILE = "template.json"  # a Template saved beside the data and every set of weights
ALPACA_HEADER = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
)
ALPACA_HEADER_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
)
BUILTIN_FORMATS = {
    "alpaca": "### Instruction:\n{prompt}\n\n### Response:\n",
    "qa": "### Question:\n{prompt}\n\n### Answer:\n",
    "chatml": "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
    "none": "{prompt}",
}
ALPACA_WITH_INPUT = "### Instruction:\n{prompt}\n\n### Input:\n{input}\n\n### Response:\n"
Segment = tuple[str, bool]  # (text, trained)
_INCONSISTENT = (
    "data.template: the model's chat template does not render a conversation as a prefix of its "
    "continuation, so prompt and answer cannot be separated; set data.template to chatml, alpaca or qa"
)


@dataclass(frozen=True)
class Template:
    """A resolved template, saved as JSON in the run directory and reloaded by every later stage."""

    name: str  # chat | alpaca | qa | chatml | none | custom
    user_format: str = "{prompt}"  # text before each response; {prompt}, {input}, {system}
    response_end: str = ""  # text after each response (EOS, or <|im_end|>\n for chatml)
    system_format: str = "{system}\n\n"  # how a system message opens the conversation
    chat_template: str | None = None  # the model's own Jinja template, when name == 'chat'
    stop_strings: tuple[str, ...] = ()  # generation stops on these as well as on EOS
    bos_token: str = ""  # passed to a chat template that writes {{ bos_token }} itself
    eos_token: str = ""

    # ------------------------------------------------------------------ rendering

    def segments(
        self, messages: list[dict], input_text: str = "", add_generation_prompt: bool = False
    ) -> list[Segment]:
        """Render a conversation. Assistant turns (and their end marker) are the trained segments, except
        those with "weight": 0, which stay in as context.

        `input_text` (alpaca's optional input) belongs to the first user turn: templates with an
        `{input}` slot place it there, the others append it to that turn's text.
        With `add_generation_prompt`, `messages` must end with a user turn and the result ends
        where the assistant's answer begins (for generation).
        """
        _check_roles(messages)
        if input_text and not self._has_input_slot():
            messages, input_text = _merge_input(messages, input_text), ""
        if self.name == "chat":
            return self._chat_segments(messages, add_generation_prompt)
        out: list[Segment] = []
        system = ""
        turns = messages
        if messages[0]["role"] == "system":
            system, turns = messages[0]["content"], messages[1:]
        first = True
        for message in turns:
            if message["role"] == "user":
                out.append((self._user_text(message["content"], input_text if first else "", system, first), False))
                first = False
            else:
                out.append((message["content"] + self.response_end, trained(message)))
        return out

    def _has_input_slot(self) -> bool:
        return self.name == "alpaca" or "{input}" in self.user_format

    def _user_text(self, prompt: str, input_text: str, system: str, first: bool) -> str:
        prefix = self.system_format.format(system=system) if first and system else ""
        fmt = self.user_format
        if self.name == "alpaca":
            fmt = ALPACA_WITH_INPUT if input_text else self.user_format
            if first and not system:
                prefix = ALPACA_HEADER_INPUT if input_text else ALPACA_HEADER
        return prefix + fmt.format(prompt=prompt, input=input_text, system=system)

    def prompt(self, messages: list[dict], input_text: str = "") -> str:
        """The text a model sees before it answers the last user message."""
        return "".join(text for text, _ in self.segments(messages, input_text, add_generation_prompt=True))

    def _chat_segments(self, messages: list[dict], add_generation_prompt: bool) -> list[Segment]:
        # Render growing prefixes with the model's template; each difference is one segment.
        out: list[Segment] = []
        done = ""
        ends = [i + 1 for i, m in enumerate(messages) if m["role"] == "assistant"]
        if add_generation_prompt:
            ends.append(len(messages))
        for end in ends:
            is_answer = messages[end - 1]["role"] == "assistant"
            prompt_part = self._render(messages[: end - 1] if is_answer else messages[:end], True)
            if not prompt_part.startswith(done):
                raise TunesmithError(_INCONSISTENT)
            out.append((prompt_part[len(done):], False))
            if is_answer:
                full = self._render(messages[:end], False)
                if not full.startswith(prompt_part):
                    raise TunesmithError(_INCONSISTENT)
                out.append((full[len(prompt_part):], trained(messages[end - 1])))
                done = full
        return [s for s in out if s[0]]

    def _render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        return _compiled(self.chat_template or "").render(
            messages=messages, add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token, eos_token=self.eos_token,
        )

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path) -> None:
        from tunesmith.runs import atomic_write_text

        atomic_write_text(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Template:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["stop_strings"] = tuple(data.get("stop_strings", ()))
        return cls(**data)


def resolve_template(spec: str, tokenizer) -> Template:
    """`data.template` -> Template, for this tokenizer (its EOS ends every response)."""
    eos = tokenizer.eos_token or ""
    if spec == "auto":
        spec = "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"
    if spec == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise TunesmithError(
                "data.template: 'chat' needs a tokenizer with a chat template; use alpaca, qa or chatml"
            )
        return Template(
            "chat", chat_template=tokenizer.chat_template, stop_strings=(eos,) if eos else (),
            bos_token=tokenizer.bos_token or "", eos_token=eos,
        )
    if spec == "chatml":
        return Template(
            "chatml", BUILTIN_FORMATS["chatml"], "<|im_end|>\n",
            system_format="<|im_start|>system\n{system}<|im_end|>\n", stop_strings=("<|im_end|>",),
        )
    if spec in BUILTIN_FORMATS:
        return Template(spec, BUILTIN_FORMATS[spec], eos)
    if "{prompt}" not in spec:
        raise TunesmithError(
            f"data.template: {spec!r} is not a known template (auto, chat, alpaca, qa, chatml, none) "
            "and has no {prompt} placeholder for a format string"
        )
    try:
        spec.format(prompt="", input="", system="")
    except (KeyError, IndexError, ValueError) as err:
        raise TunesmithError(
            f"data.template: bad format string {spec!r} ({err}); use {{prompt}}, {{input}}, {{system}}"
        ) from None
    return Template("custom", spec, eos)


@lru_cache(maxsize=8)
def _compiled(chat_template: str):
    """The chat template compiled once per process (compiling costs far more than rendering)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TunesmithError(f"the model's chat template refused this conversation: {message}")

    # the same Jinja settings transformers uses for apply_chat_template
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    return env.from_string(chat_template)


def trained(message: dict) -> bool:
    """An assistant turn is trained unless its data gave it weight 0 (OpenAI fine-tuning's per-message weight)."""
    return message.get("weight", 1) != 0


def _merge_input(messages: list[dict], input_text: str) -> list[dict]:
    """Append alpaca's input to the first user turn, for templates without an {input} slot."""
    out = [dict(m) for m in messages]
    first_user = next(i for i, m in enumerate(out) if m["role"] == "user")
    out[first_user]["content"] = f"{out[first_user]['content']}\n\n{input_text}"
    return out


def _check_roles(messages: list[dict]) -> None:
    if not messages:
        raise TunesmithError("a conversation needs at least one message")
    roles = [m.get("role") for m in messages]
    body = roles[1:] if roles[0] == "system" else roles
    expected = ["user", "assistant"] * len(body)
    if not body or body != expected[: len(body)]:
        raise TunesmithError(f"messages must alternate user/assistant after an optional system message, got {roles}")
