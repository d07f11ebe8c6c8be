"""A progress bar per model on stderr (rich), or nothing when progress is off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.console = Console(stderr=True)
        self.bar = (
            RichProgress(
                TextColumn("{task.description:>9}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            if enabled
            else None
        )

    def __enter__(self) -> Progress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.stop()

    def note(self, text: str) -> None:
        if self.bar:
            self.bar.console.print(text, markup=False, highlight=False)

    @contextmanager
    def task(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        """Yields `advance(n)`: call it as examples finish."""
        if not self.bar:
            yield lambda n: None
            return
        task_id = self.bar.add_task(name, total=total)
        yield lambda n: self.bar.advance(task_id, n)
        self.bar.update(task_id, completed=total)
