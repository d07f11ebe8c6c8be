"""Whether code shipped with a model may run: only the person at the command line can say yes.

`tunesmith --trust-remote-code ...` or `TUNESMITH_TRUST_REMOTE_CODE=1` allows a model's own Python
(a `config.json` `auto_map`) to be imported. A file never allows it: not a run directory's
`config.yaml` (run directories get copied between people), not a config passed to `train`.
"""

from __future__ import annotations

import os

from tunesmith.errors import TunesmithError

TRUST_ENV = "TUNESMITH_TRUST_REMOTE_CODE"
YES = {"1", "true", "yes", "on"}


def allowed() -> bool:
    """True when the command line (flag or environment) allows model code to run."""
    return os.environ.get(TRUST_ENV, "").strip().lower() in YES


def allow() -> None:
    """`--trust-remote-code`: recorded in the environment, so torchrun workers inherit it."""
    os.environ[TRUST_ENV] = "1"


def gate(config):
    """The config with `trust_remote_code` set by the command line alone.

    A config that asks for it without the command line's consent is refused (it may have come with
    a run directory from someone else), with the way to consent.
    """
    if config.trust_remote_code and not allowed():
        raise TunesmithError(
            "trust_remote_code: true in the config does not allow model code to run by itself; if you "
            f"trust this model's code, say so on the command line: `tunesmith --trust-remote-code ...` "
            f"or {TRUST_ENV}=1"
        )
    if allowed() and not config.trust_remote_code:
        return config.model_copy(update={"trust_remote_code": True})
    return config
