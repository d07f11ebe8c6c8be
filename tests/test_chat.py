"""`tunesmith chat`: the session logic on in-memory streams, and the real program on a pseudo-terminal."""

from __future__ import annotations

import codecs
import io
import os
import pty
import select
import signal
import sys
import time

import pytest

from test_serve_support import save_lively_model, tiny_loaded
from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine.decoding import Sequence, generate, stop_token_ids
from tunesmith.loading import load_for_use
from tunesmith.use.chat import ChatSession, run_chat

GREEDY = {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 8}


def expected_reply(loaded, messages: list[dict], max_new_tokens: int = 8) -> str:
    stop_ids = stop_token_ids(loaded.model, loaded.tokenizer, loaded.template.stop_strings)
    ids = encode_prompt(loaded.tokenizer, loaded.template, messages)
    sequence = Sequence(ids, max_new_tokens, stop_strings=loaded.template.stop_strings)
    return generate(loaded.model, loaded.tokenizer, [sequence], stop_ids)[0].text


@pytest.fixture(scope="module")
def loaded():
    return tiny_loaded()


def test_replies_keep_history_until_reset(loaded):
    session = ChatSession(loaded, system="Be brief.", **GREEDY)
    system = [{"role": "system", "content": "Be brief."}]
    first = "".join(session.reply("hello"))
    assert first == expected_reply(loaded, system + [{"role": "user", "content": "hello"}])
    second = "".join(session.reply("and then?"))
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": first}]
    assert second == expected_reply(loaded, system + history + [{"role": "user", "content": "and then?"}])
    assert len(session.turns) == 4
    session.reset()
    assert "".join(session.reply("hello")) == first


def test_old_turns_are_dropped_to_fit_the_context(loaded):
    session = ChatSession(loaded, **GREEDY)
    long = "0 1 2 3 4 5 6 7 8 9 " * 10  # 200 tokens per message; the tiny context is 512
    "".join(session.reply(long))
    "".join(session.reply(long))
    assert session.dropped == 0 and len(session.turns) == 4
    "".join(session.reply(long))
    assert session.dropped == 2 and len(session.turns) == 4


def test_run_chat_commands_on_streams(loaded):
    session = ChatSession(loaded, **GREEDY)
    out = io.StringIO()
    run_chat(session, io.StringIO("hello\n\n/bogus\n/reset\nhello\n"), out)  # ends at end of input
    reply = expected_reply(loaded, [{"role": "user", "content": "hello"}])
    text = out.getvalue()
    assert text.startswith("chatting with tiny (template: chat)")
    assert text.count(f"model> {reply}\n") == 2
    assert "unknown command /bogus" in text and "(conversation cleared)" in text
    assert text.endswith("you> \n")


def test_a_too_long_message_is_reported_and_the_chat_goes_on(loaded):
    out = io.StringIO()
    run_chat(ChatSession(loaded, **GREEDY), io.StringIO("9 " * 700 + "\nhello\n/exit\n"), out)
    assert "[error: that message is" in out.getvalue()
    assert f"model> {expected_reply(loaded, [{'role': 'user', 'content': 'hello'}])}\n" in out.getvalue()


# ---------------------------------------------------------------- the real program on a terminal


class Terminal:
    """A child process on a pseudo-terminal (its controlling tty), read and written like a user would."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the program
            os.execvpe(argv[0], argv, env)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.buffer = ""

    def expect(self, text: str, timeout: float = 90.0) -> str:
        """Read until `text` appears; return what came before it (terminal \\r\\n turned back into \\n)."""
        deadline = time.monotonic() + timeout
        while text not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {text!r}; got {self.buffer[-500:]!r}")
            if select.select([self.fd], [], [], left)[0]:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    data = b""
                if not data:
                    raise AssertionError(f"the program ended before {text!r}; got {self.buffer[-500:]!r}")
                self.buffer = (self.buffer + self.decoder.decode(data)).replace("\r\n", "\n")
        before, _, self.buffer = self.buffer.partition(text)
        return before

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("the chat program did not exit")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_lively_model(tmp_path_factory.mktemp("lively"))


def test_chat_program_on_a_terminal(model_dir):
    code = ("import sys; from tunesmith.use.chat import chat; "
            "chat(sys.argv[1], temperature=0.0, top_p=1.0, max_new_tokens=8)")
    env = {**os.environ, "TERM": "dumb", "PYTHONIOENCODING": "utf-8", "HF_HUB_OFFLINE": "1"}
    term = Terminal([sys.executable, "-c", code, str(model_dir)], env)
    loaded = load_for_use(model_dir)
    assert "chatting with" in term.expect("you> ")
    term.send("hello\n")
    term.expect("model> ")
    first = term.expect("\nyou> ")
    assert first == expected_reply(loaded, [{"role": "user", "content": "hello"}])
    term.send("and then?\n")
    term.expect("model> ")
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": first}]
    assert term.expect("\nyou> ") == expected_reply(loaded, history + [{"role": "user", "content": "and then?"}])
    term.send("/reset\n")
    term.expect("(conversation cleared)\nyou> ")
    term.send("hello\n")
    term.expect("model> ")
    assert term.expect("\nyou> ") == first
    term.send("/exit\n")
    assert term.wait() == 0
