"""evaluate stage: batched generation, metrics, multiple choice, and the three-way comparison.

The entry points are imported lazily so that `tunesmith.evaluate.metrics` stays cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunesmith.callable_package import make_callable

if TYPE_CHECKING:
    from tunesmith.config import Config

__all__ = ["compare", "evaluate", "format_table"]


def compare(config: Config, **kwargs) -> dict:
    """See `tunesmith.evaluate.runner.compare`."""
    from tunesmith.evaluate.runner import compare as run_compare

    return run_compare(config, **kwargs)


def evaluate(config: Config, **kwargs) -> dict:
    """See `tunesmith.evaluate.runner.evaluate`."""
    from tunesmith.evaluate.runner import evaluate as run_evaluate

    return run_evaluate(config, **kwargs)


def format_table(metrics: dict) -> str:
    """See `tunesmith.evaluate.table.format_table`."""
    from tunesmith.evaluate.table import format_table as table

    return table(metrics)

make_callable(__name__, "evaluate")  # tunesmith.evaluate(...) calls evaluate(...)
