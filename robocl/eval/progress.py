"""Live progress display (rich) that degrades to nothing when disabled."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


class NullProgress:
    def add_task(self, description: str, total: float | None = None, **fields) -> int:
        return 0

    def update(self, task_id: int, **kwargs) -> None:
        pass

    def remove_task(self, task_id: int) -> None:
        pass

    def log(self, *args) -> None:
        console.print(*args)


@contextmanager
def progress_bar(enabled: bool = True):
    """`with progress_bar() as p:` yields a rich Progress (or a no-op one)."""
    if not enabled:
        yield NullProgress()
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        progress.log = progress.console.log  # type: ignore[attr-defined]
        yield progress
