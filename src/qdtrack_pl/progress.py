"""One rich progress bar helper for the long loops outside Lightning's own bars (scoring, format
conversion, rendering). It draws on rich's global console, so inside a running
``RichProgressBar`` it nests as an extra line (rich >= 14) instead of fighting over the terminal;
where nesting is not supported it silently draws nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich import get_console
from rich.errors import LiveError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _no_progress(steps: int = 1) -> None:
    """``advance`` of a disabled bar."""


@contextmanager
def progress_bar(
    total: int, description: str, enabled: bool = True, transient: bool = True
) -> Iterator[Callable[[int], None]]:
    """``with progress_bar(n, "scoring") as advance: ... advance(1)``; a no-op when disabled."""
    if not enabled or total <= 0 or _jupyter_without_widgets():
        yield _no_progress
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=get_console(),
        transient=transient,
    )
    try:
        progress.start()
    except LiveError:  # rich < 14 with another live display (Lightning's bar) running
        yield _no_progress
        return
    try:
        task = progress.add_task(description, total=total)

        def advance(steps: int = 1) -> None:
            progress.advance(task, steps)

        yield advance
    finally:
        progress.stop()


def _jupyter_without_widgets() -> bool:
    """rich draws live displays in notebooks through ipywidgets; without it, it only warns."""
    if not get_console().is_jupyter:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return True
    return False
