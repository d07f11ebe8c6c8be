"""`tunesmith chat MODEL`: talk to a model in the terminal, with the template it was trained with.

Replies stream as they are generated; the conversation is kept (oldest turns are dropped when it
outgrows the context). /reset forgets it, /exit (or Ctrl-D) quits, Ctrl-C stops a reply.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine.decoding import Sequence, context_length, decode_batch, stop_token_ids
from tunesmith.errors import TunesmithError
from tunesmith.loading import LoadedModel, load_for_use

HELP = "/reset clears the conversation, /exit quits, Ctrl-C stops a reply"
USER_PROMPT = "you> "
MODEL_PROMPT = "model> "


def chat(
    target: str,
    *,
    temperature: float = 0.7,
    top_p: float = 0.9,
    max_new_tokens: int = 256,
    system: str | None = None,
    seed: int | None = None,
    dtype: str = "auto",
    input_stream: TextIO | None = None,
    output_stream: TextIO | None = None,
) -> None:
    """Load `target` and chat with it on `input_stream`/`output_stream` (default: the terminal)."""
    if max_new_tokens < 1:
        raise TunesmithError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    loaded = load_for_use(target, dtype=dtype)
    print(f"loaded {loaded.describe()}", file=sys.stderr)
    session = ChatSession(loaded, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                          system=system, seed=seed)
    run_chat(session, input_stream or sys.stdin, output_stream or sys.stdout)


class ChatSession:
    """The conversation so far, and replies generated from it."""

    def __init__(self, loaded: LoadedModel, *, temperature: float, top_p: float, max_new_tokens: int,
                 system: str | None = None, seed: int | None = None):
        self.loaded, self.temperature, self.top_p, self.max_new_tokens = loaded, temperature, top_p, max_new_tokens
        self.system, self.seed = system, seed
        self.turns: list[dict] = []  # user/assistant messages, oldest first
        self.stop_ids = stop_token_ids(loaded.model, loaded.tokenizer, loaded.template.stop_strings)
        self.context = context_length(loaded.model)
        self.dropped = 0  # turns dropped by the last reply to fit the context

    def reset(self) -> None:
        self.turns = []

    def reply(self, text: str) -> Iterator[str]:
        """Stream the answer to `text`; the exchange joins the history, even if stopped early."""
        user = {"role": "user", "content": text}
        ids = self._fit(user)
        room = min(self.max_new_tokens, self.context - len(ids))
        sequence = Sequence(ids, room, self.temperature, self.top_p, self.loaded.template.stop_strings, self.seed)
        try:
            for updates in decode_batch(self.loaded.model, self.loaded.tokenizer, [sequence], self.stop_ids):
                yield from (delta for _, delta, _ in updates if delta)
        finally:
            self.turns += [user, {"role": "assistant", "content": sequence.text}]

    def _fit(self, user: dict) -> list[int]:
        """Prompt ids for the history + `user`, dropping the oldest exchanges until it leaves room to answer."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        budget = self.context - min(self.max_new_tokens, self.context // 2)
        self.dropped = 0
        while True:
            ids = encode_prompt(self.loaded.tokenizer, self.loaded.template, head + self.turns + [user])
            if len(ids) <= budget or not self.turns:
                break
            self.turns, self.dropped = self.turns[2:], self.dropped + 2
        if len(ids) >= self.context:
            raise TunesmithError(f"that message is {len(ids)} tokens in the template; the model's context "
                                 f"is {self.context} tokens")
        return ids


def run_chat(session: ChatSession, input_stream: TextIO, output_stream: TextIO) -> None:
    """The read-reply loop; returns on /exit, end of input or Ctrl-C at the prompt."""
    write = _writer(output_stream)
    loaded = session.loaded
    write(f"chatting with {loaded.name} (template: {loaded.template.name}); {HELP}\n")
    while True:
        try:
            line = _read_line(input_stream, output_stream)
        except (KeyboardInterrupt, EOFError):
            line = None
        if line is None:
            write("\n")
            return
        text = line.strip()
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            session.reset()
            write("(conversation cleared)\n")
        elif text.startswith("/"):
            write(f"unknown command {text}: {HELP}\n")
        elif text:
            _answer(session, text, write)


def _answer(session: ChatSession, text: str, write) -> None:
    write(MODEL_PROMPT)
    stream = session.reply(text)
    try:
        for delta in stream:
            write(delta)
    except KeyboardInterrupt:
        write(" [stopped]")
    except TunesmithError as err:
        write(f"[error: {err}]")
    finally:
        stream.close()
    write("\n")
    if session.dropped:
        write(f"(the {session.dropped} oldest messages were dropped to fit the model's context)\n")


def _read_line(input_stream: TextIO, output_stream: TextIO) -> str | None:
    """One line of input, or None at end of input; line editing when both ends are the terminal."""
    if input_stream is sys.stdin and output_stream is sys.stdout and sys.stdin.isatty():
        try:
            import readline  # noqa: F401 - enables arrow keys and history for input()
        except ImportError:
            pass
        return input(USER_PROMPT)
    output_stream.write(USER_PROMPT)
    output_stream.flush()
    line = input_stream.readline()
    return line if line else None


def _writer(output_stream: TextIO):
    def write(text: str) -> None:
        output_stream.write(text)
        output_stream.flush()

    return write
