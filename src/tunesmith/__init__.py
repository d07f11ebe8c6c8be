"""tunesmith: fine-tune a language model on your own data and prove, with numbers, whether it helped.

The Python API mirrors the CLI; heavy dependencies load on first use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from tunesmith.config import Config, load_config
from tunesmith.errors import TunesmithError

# bitsandbytes (the qlora extra), which peft imports when installed, warns on a CPU that an optional hub
# kernel is missing; its own CPU path works without it
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__version__ = "0.1.0"
__all__ = [
    "Config", "TunesmithError", "load_config", "prepare", "train", "evaluate", "compare",
    "write_report", "run", "quickstart", "load_for_use",
]

_LAZY = {
    "prepare": "tunesmith.data.prepare",
    "train": "tunesmith.train",
    "evaluate": "tunesmith.evaluate",
    "compare": "tunesmith.evaluate",
    "write_report": "tunesmith.report",
    "run": "tunesmith.pipeline",
    "quickstart": "tunesmith.pipeline",
    "load_for_use": "tunesmith.loading",
}

if TYPE_CHECKING:  # pragma: no cover
    from tunesmith.data.prepare import prepare  # noqa: F401
    from tunesmith.evaluate import compare, evaluate  # noqa: F401
    from tunesmith.loading import load_for_use  # noqa: F401
    from tunesmith.pipeline import quickstart, run  # noqa: F401
    from tunesmith.report import write_report  # noqa: F401
    from tunesmith.train import train  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tunesmith' has no attribute {name!r}")
