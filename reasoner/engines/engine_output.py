"""The engine's own output goes to a log file, not to the user's terminal (unless verbose).

vLLM's engine processes (EngineCore, workers, multiprocessing's resource tracker) write
import notices, warnings, progress bars and C++ log lines to the stdout and stderr they
inherit. While an engine starts, `engine_output_to_log` points this process's file
descriptors 1 and 2 at a fresh log file under `REASONER_HOME/logs`, so every process
spawned meanwhile writes there for its whole life; this process's `sys.stderr` is kept on
the terminal for that time (a status line keeps drawing), and everything is restored after.
The newest `KEPT_LOGS` logs are kept. vLLM's own logger in this process logs errors only,
and its traceback for an engine shut down under its output handler is prevented.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from reasoner.models import reasoner_home

KEPT_LOGS = 10


def engine_log_dir() -> Path:
    """Where engine logs are written."""
    return reasoner_home() / "logs"


class _EngineDeathNoise(logging.Filter):
    """Drops vLLM's traceback for an engine that stopped: the backend reports it as an `EngineError`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "output_handler failed" not in record.getMessage()


def quiet_vllm_logger() -> None:
    """In this process, vLLM logs errors only (unless `VLLM_LOGGING_LEVEL` says otherwise), and never
    its `AsyncLLM output_handler failed` traceback. Idempotent; call it after an engine started
    (vLLM sets its logger's level when it builds one).
    """
    if "VLLM_LOGGING_LEVEL" not in os.environ:
        logging.getLogger("vllm").setLevel(logging.ERROR)
    logger = logging.getLogger("vllm.v1.engine.async_llm")
    if not any(isinstance(existing, _EngineDeathNoise) for existing in logger.filters):
        logger.addFilter(_EngineDeathNoise())


def cancel_output_handler(engine: Any) -> None:
    """Cancel an `AsyncLLM`'s output-handler task before the engine is shut down, and from another
    thread wait until it ended, so it never sees the engine die under it (vLLM would print that as
    a traceback, at every normal exit of a script)."""
    handler = getattr(engine, "output_handler", None)
    if handler is None or handler.done():
        return
    loop = handler.get_loop()
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if current is loop or not loop.is_running():
        handler.cancel()
        return

    async def cancel() -> None:
        handler.cancel()
        await asyncio.wait([handler], timeout=5)

    asyncio.run_coroutine_threadsafe(cancel(), loop).result(timeout=10)


@contextlib.contextmanager
def engine_output_to_log(label: str) -> Iterator[Path | None]:
    """While the block runs, processes started by this one write their output to a log file.

    So does this process through its file descriptors and through vLLM's loggers (a notice
    logged before vLLM configures its logging too); `sys.stderr` stays on the terminal.
    Yields the log's path, or None when no log could be opened (then nothing is redirected).
    """
    log_file = _open_log(label)
    if log_file is None:
        yield None
        return
    path, log_fd = log_file
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    terminal_stderr = sys.stderr
    if _writes_to(terminal_stderr, 2):
        sys.stderr = _stream_on(saved[2], terminal_stderr.encoding, terminal_stderr.errors)
    vllm_logger = logging.getLogger("vllm")
    to_log = logging.StreamHandler(_stream_on(log_fd))
    vllm_logger.addHandler(to_log)
    try:
        for fd in (1, 2):
            os.dup2(log_fd, fd)
        yield path
    finally:
        vllm_logger.removeHandler(to_log)
        to_log.stream.close()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stderr = terminal_stderr
        for fd in (1, 2):
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
        os.close(log_fd)


def _open_log(label: str) -> tuple[Path, int] | None:
    folder = engine_log_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _prune(folder)
        path = folder / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(log_fd, f"reasoner: engine log for {label}\n".encode())
    except OSError:
        return None
    return path, log_fd


def _prune(folder: Path) -> None:
    """Delete all but the newest `KEPT_LOGS - 1` logs (the new one makes `KEPT_LOGS`)."""
    with contextlib.suppress(OSError):
        logs = sorted(folder.glob("engine-*.log"), key=lambda log: log.stat().st_mtime)
        for old in logs[: max(0, len(logs) - KEPT_LOGS + 1)]:
            old.unlink(missing_ok=True)


def _writes_to(stream: object, fd: int) -> bool:
    try:
        return bool(stream.fileno() == fd)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _stream_on(fd: int, encoding: str = "utf-8", errors: str | None = "backslashreplace") -> TextIO:
    """A line-buffered text stream on a duplicate of `fd`."""
    return open(os.dup(fd), "w", buffering=1, encoding=encoding, errors=errors or "strict")
