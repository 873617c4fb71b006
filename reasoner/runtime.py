"""Running the async core from synchronous code, also inside a running event loop (Jupyter)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SIGNAL_CHECK_S = 0.25


class LoopThread:
    """An event loop on a daemon thread; synchronous callers submit coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="reasoner-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop thread and wait for its result (Ctrl-C cancels it)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            # Waits in short slices: the kernel may hand SIGINT to another of the process's threads (one
            # whose mask lets it through), and then an unbounded wait of this thread is never interrupted;
            # between slices Python runs the handler here and raises KeyboardInterrupt.
            while not future.done():
                concurrent.futures.wait([future], timeout=SIGNAL_CHECK_S)
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    def stop(self) -> None:
        """Cancel what still runs on the loop (engine output handlers too), then end the thread."""
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(_cancel_other_tasks(), self.loop).result(timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


async def _cancel_other_tasks() -> None:
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
