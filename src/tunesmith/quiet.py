"""Quiet by default: tunesmith's own progress and findings, not the libraries' bars and warnings.

Third-party progress bars (transformers' "Loading weights", datasets' "Map" and "Saving the
dataset"), their info logs and their Future/Deprecation warnings are switched off through the
environment variables those libraries read at import time, so this must run before they are
imported (the CLI calls it first thing); the variables also reach torchrun's worker processes.
`tunesmith -v ...` leaves everything on.
"""

from __future__ import annotations

import logging
import os
import warnings

QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' bars follow huggingface_hub's switch
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",
}
LIBRARIES = r"(torch|transformers|peft|datasets|accelerate|huggingface_hub|tokenizers)(\..*)?"
# Python loggers of libraries imported along the way (bitsandbytes, via peft, warns about optional kernels)
QUIET_LOGGERS = ("bitsandbytes", "accelerate", "peft", "huggingface_hub")


def configure(verbose: bool = False) -> None:
    """Silence third-party output unless `verbose`; a variable the user already set is kept."""
    if verbose:
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", category=UserWarning, module=LIBRARIES)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
