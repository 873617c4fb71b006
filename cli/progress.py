"""Rich displays on stderr: the start-up status line (engine or servers), and eval progress (results done,
accuracy so far, tokens per second). Both draw only on a terminal."""

from __future__ import annotations

import contextlib
import time
from contextlib import AbstractContextManager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from reasoner.engines.base import Backend
from reasoner.engines.remote import RemoteBackend


def start_message(backend: Backend, model_name: str) -> str:
    """What starting `backend` does, for the status line: an engine started here, or servers reached."""
    if isinstance(backend, RemoteBackend):
        servers = f"{len(backend.endpoints)} vLLM servers" if len(backend.endpoints) > 1 else backend.endpoints[0]
        return f"Connecting to {servers} for {model_name}"
    return f"Starting the vLLM engine for {model_name}"


def engine_start_status(console: Console, message: str) -> AbstractContextManager[object]:
    """A transient status line (`message`, a spinner and the elapsed time) while the backend starts, on a
    terminal (elsewhere nothing). Use as a context manager around the start.
    """
    if not console.is_terminal:
        return contextlib.nullcontext()
    status = Progress(
        SpinnerColumn(),
        TextColumn(message),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    status.add_task("start", total=None)
    return status


class EvalProgress:
    """`begin` with the grid size, then `update` with each record written; a context manager around the run."""

    def __init__(self, console: Console):
        self.done = 0
        self.fresh = 0
        self.correct = 0
        self.generated_tokens = 0
        self._started = time.monotonic()
        self._progress = Progress(
            TextColumn("[bold]eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[accuracy]}"),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("eval", total=None, accuracy="", speed="")

    def begin(self, total: int, already_done: int) -> None:
        """Set the grid size and the results a previous run already wrote."""
        self.done = already_done
        self._started = time.monotonic()
        self._progress.update(self._task, total=total, completed=already_done)

    def update(self, record: dict[str, Any]) -> None:
        """Count one finished record."""
        self.done += 1
        self.fresh += 1
        self.correct += int(bool(record.get("correct")))
        self.generated_tokens += int(record.get("usage", {}).get("generated_tokens", 0))
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._progress.update(
            self._task,
            completed=self.done,
            accuracy=f"acc {self.correct / self.fresh:.1%}",
            speed=f"{self.generated_tokens / elapsed:.1f} tok/s",
        )

    def __enter__(self) -> EvalProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()
