"""tunesmith: fine-tune a language model on your own data and prove, with numbers, whether it helped.

The Python API mirrors the CLI, one function per command; heavy dependencies load on first use.

    import tunesmith
    config = tunesmith.load_config("faq.jsonl", ["train.epochs=1"])  # a data file or a YAML config
    result = tunesmith.run(config)                                    # prep + train + compare + report
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

# public name -> (module, attribute): the function each CLI command calls
_LAZY = {
    "prepare": ("tunesmith.data.prepare", "prepare"),
    "train": ("tunesmith.train", "train"),
    "evaluate": ("tunesmith.evaluate", "evaluate"),
    "compare": ("tunesmith.evaluate", "compare"),
    "write_report": ("tunesmith.report", "write_report"),
    "run": ("tunesmith.pipeline", "run"),
    "quickstart": ("tunesmith.pipeline", "quickstart"),
    "generate": ("tunesmith.use.generate_file", "generate_file"),
    "export": ("tunesmith.use.export", "export"),
    "chat": ("tunesmith.use.chat", "chat"),
    "serve": ("tunesmith.serve", "serve"),
    "load_for_use": ("tunesmith.loading", "load_for_use"),
}
__all__ = ["Config", "TunesmithError", "load_config", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from tunesmith.data.prepare import prepare  # noqa: F401
    from tunesmith.evaluate import compare, evaluate  # noqa: F401
    from tunesmith.loading import load_for_use  # noqa: F401
    from tunesmith.pipeline import quickstart, run  # noqa: F401
    from tunesmith.report import write_report  # noqa: F401
    from tunesmith.serve import serve  # noqa: F401
    from tunesmith.train import train  # noqa: F401
    from tunesmith.use.chat import chat  # noqa: F401
    from tunesmith.use.export import export  # noqa: F401
    from tunesmith.use.generate_file import generate_file as generate  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'tunesmith' has no attribute {name!r}")
