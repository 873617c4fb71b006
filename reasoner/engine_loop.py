"""Where a `Reasoner`'s engines run: starting and closing them, and the event loop that owns them.

An engine answers only on the event loop that started it. The first loop to use a Reasoner owns
its engines; a call from another loop is handed to the owner while that loop runs, and takes the
engines over (closing them first) once it has stopped or closed. Synchronous calls run on a
helper thread's loop (`reasoner.runtime.LoopThread`), so they work inside a running loop too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

from reasoner.engines.base import Backend
from reasoner.errors import UsageError
from reasoner.model_set import ModelTarget
from reasoner.runtime import LoopThread

T = TypeVar("T")


class EngineLoopOwner:
    """The engines' lifecycle and the loop plumbing of `Reasoner`, its subclass."""

    models: dict[str, ModelTarget]
    max_concurrency: int

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._portal: LoopThread | None = None
        self._limiter: asyncio.Semaphore | None = None

    async def arun_on_engine_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await `coroutine` on the event loop that owns this Reasoner's engine.

        Code that drives `self.backend` itself (a `Session` of its own, as the estimators of
        calibration do) must run there: an engine answers only on the loop that started it, so
        from any other loop its requests would hang.
        """
        return cast(T, await self._on_own_loop(coroutine))

    async def astart(self) -> None:
        """Start the engines now instead of at the first solve."""
        await self._on_own_loop(self._start_engines())

    def start(self) -> None:
        """Synchronous `astart`."""
        self._portal_loop().run(self.astart())

    async def aclose(self) -> None:
        """Stop the engine; a later solve starts it again."""
        if self._loop is not None and self._loop is not asyncio.get_running_loop() and self._loop.is_running():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close_engines(), self._loop))
        else:
            await self._close_engines()

    def close(self) -> None:
        """Stop the engine and the helper thread, if any.

        Inside the event loop that runs the engine (after `await astart()` or `asolve` there),
        blocking would stop that loop for good: that is a `UsageError`; use `await aclose()`.
        """
        if self._loop is not None and self._loop is _running_loop():
            raise UsageError(
                "Reasoner.close() was called inside the event loop that runs the engine, where it would block "
                "forever; use `await reasoner.aclose()` or `async with Reasoner(...)`"
            )
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close_engines(), self._loop).result()
        else:
            asyncio.run(self._close_engines())
        if self._portal is not None:
            self._portal.stop()
            self._portal = None
        self._loop = None

    def _engines(self) -> list[Backend]:
        """Every model's backend, once each (two names may share one)."""
        return list({id(target.backend): target.backend for target in self.models.values()}.values())

    async def _start_engines(self) -> None:
        for backend in self._engines():
            await backend.start()

    async def _close_engines(self) -> None:
        for backend in self._engines():
            await backend.close()

    def _portal_loop(self) -> LoopThread:
        if self._portal is None:
            self._portal = LoopThread()
        return self._portal

    async def _on_own_loop(self, coroutine: Any) -> Any:
        """Run on the loop that owns the engine; the first loop to use this Reasoner owns it."""
        current = asyncio.get_running_loop()
        if self._loop is None or self._loop.is_closed() or (self._loop is not current and not self._loop.is_running()):
            if self._loop is not None and self._loop is not current:
                await self._close_engines()
            self._loop = current
            self._limiter = asyncio.Semaphore(self.max_concurrency)
        if self._loop is current:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
