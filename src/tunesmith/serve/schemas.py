"""Request bodies of the OpenAI API subset tunesmith serves, and the server's limits.

Unknown fields are ignored (clients send many); fields tunesmith cannot honour are refused
with a 400 rather than silently ignored (see `unsupported`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

MAX_STOPS = 4  # as OpenAI
SEED_RANGE = 2**63  # a seed is a non-negative 64-bit signed integer (torch's generators take it)


@dataclass(frozen=True)
class Limits:
    """Upper bounds on one request; beyond them the server answers 400/413 instead of working."""

    max_body_bytes: int = 1_000_000
    max_tokens: int = 2048  # largest max_tokens a request may ask for
    default_max_tokens: int = 256  # chat completions without max_tokens (completions: 16, as OpenAI)
    max_prompts: int = 32  # prompts in one /v1/completions request
    max_choices: int = 64  # prompts x n in one request


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    n: int = Field(1, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, lt=SEED_RANGE)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, allow_inf_nan=False)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, allow_inf_nan=False)
    logit_bias: dict[str, float] | None = None
    user: str | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_is_a_few_strings(cls, value):
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise PydanticCustomError("stop_type", "must be a string or a list of up to 4 strings")
        if len(value) > MAX_STOPS:
            raise PydanticCustomError("stop_count", "at most {limit} stop sequences, got {count}",
                                      {"limit": MAX_STOPS, "count": len(value)})
        return value

    def stop_strings(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return tuple(s for s in stops if s)

    def unsupported(self) -> str | None:
        """The first field that asks for something tunesmith does not do, if any."""
        if self.presence_penalty or self.frequency_penalty:
            return "presence_penalty" if self.presence_penalty else "frequency_penalty"
        return "logit_bias" if self.logit_bias else None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class CompletionRequest(Request):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(None, ge=0)  # 0 with echo: score the prompt only
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=20)
    best_of: int | None = None
    suffix: str | None = None

    @field_validator("prompt", mode="after")
    @classmethod
    def _prompt_is_not_empty(cls, value):
        if isinstance(value, list) and not value:
            raise PydanticCustomError("prompt_empty", "is empty: give a string, or a non-empty list of prompts")
        return value

    def prompts(self) -> list[str | list[int]]:
        """The prompt(s) as a list: strings are tokenized later, id lists are used as they are."""
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if prompt and all(isinstance(p, int) for p in prompt):
            return [list(prompt)]
        return list(prompt)

    def unsupported(self) -> str | None:
        if self.best_of not in (None, 1, self.n):
            return "best_of"
        return "suffix" if self.suffix else super().unsupported()


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def as_template_message(self) -> dict[str, str]:
        """{role, content} as templates take it: developer counts as system, text parts are joined."""
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content or [])
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class ChatRequest(Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    tools: list | None = None
    tool_choice: str | dict | None = None
    response_format: dict | None = None

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def unsupported(self) -> str | None:
        if self.logprobs:
            return "logprobs"
        if self.tools:
            return "tools"
        if self.response_format and self.response_format.get("type") not in (None, "text"):
            return "response_format"
        return super().unsupported()


Request.model_rebuild()
CompletionRequest.model_rebuild()
ChatRequest.model_rebuild()
