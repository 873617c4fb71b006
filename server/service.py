"""Many clients, one engine: admission, the bounded queue, cancellation and draining.

`max_concurrency` solves run at once; `max_queue` more may wait for a slot. A request that
would pass both is refused at once with 429 and `Retry-After` (never queued without bound);
one that asks for more solves than both together could ever hold is a 400, not a 429.
Every solve is an asyncio task the service tracks: cancelling it (client gone, shutdown)
makes `Reasoner.asolve` abort every engine request of that solve. `drain` stops
admission, lets solves in flight finish within a deadline, then cancels the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from reasoner import Reasoner, Solution
from reasoner.events import EventCallback
from server.config import ServerConfig
from server.errors import APIError
from server.metrics import ServerMetrics
from server.selection import SolvePlan


class SolveService:
    """Runs the server's solves on one `Reasoner`, within the queue's bounds."""

    def __init__(self, reasoner: Reasoner, config: ServerConfig, metrics: ServerMetrics):
        self.reasoner = reasoner
        self.config = config
        self.metrics = metrics
        self.accepting = True
        self.admitted = 0
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[Solution]] = set()

    @property
    def in_flight(self) -> int:
        """Solves admitted and not yet finished (running or waiting)."""
        return self.admitted

    def check_request_size(self, count: int) -> None:
        """Refuse with 400 a request of more solves than the server ever holds at once (retrying cannot help)."""
        capacity = self.config.max_concurrency + self.config.max_queue
        if count > capacity:
            raise APIError(
                400,
                f"this request asks for {count} solves, more than this server ever holds at once ({capacity}: "
                f"{self.config.max_concurrency} running and {self.config.max_queue} queued); send at most {capacity} "
                "prompts per request",
                param="prompt",
                code="too_many_prompts",
            )

    def admit(self, count: int = 1) -> None:
        """Take `count` places in the queue, or refuse with 503 (shutting down) or 429 (full)."""
        if not self.accepting:
            raise APIError(503, "the server is shutting down", type_="server_error", code="shutting_down")
        self.check_request_size(count)
        capacity = self.config.max_concurrency + self.config.max_queue
        if self.admitted + count > capacity:
            self.metrics.rejected.inc()
            raise APIError(
                429,
                f"the server is at capacity ({self.admitted} solves running or queued of {capacity}); retry later",
                type_="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": str(self.config.retry_after_s)},
            )
        self.admitted += count
        self.metrics.solves_waiting.inc(count)

    def start(self, plan: SolvePlan, on_event: EventCallback | None = None) -> asyncio.Task[Solution]:
        """Run an admitted plan as a task; its place in the queue is freed when it ends."""
        task = asyncio.ensure_future(self._solve(plan, on_event))
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Solution]) -> None:
        self._tasks.discard(task)
        self.admitted -= 1
        if task.cancelled():
            self.metrics.aborted.inc()
        elif task.exception() is None:
            self.metrics.record_solution(task.result())

    async def _solve(self, plan: SolvePlan, on_event: EventCallback | None) -> Solution:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.max_concurrency)
        waiting = True
        try:
            async with self._slots:
                self.metrics.solves_waiting.dec()
                waiting = False
                self.metrics.solves_running.inc()
                try:
                    return await self.reasoner.asolve(
                        plan.prompt,
                        plan.budget,
                        plan.strategy,
                        answer_format=plan.answer_format,
                        on_event=on_event,
                        model=plan.on_model,
                        **plan.options,
                    )
                finally:
                    self.metrics.solves_running.dec()
        finally:
            if waiting:
                self.metrics.solves_waiting.dec()

    async def drain(self, timeout_s: float) -> int:
        """Refuse new solves, wait up to `timeout_s` for those in flight, cancel the rest; return how many."""
        self.accepting = False
        deadline = time.monotonic() + timeout_s
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - time.monotonic()))
        left = list(self._tasks)
        for task in left:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*left, return_exceptions=True)
        return len(left)


async def cancel_quietly(tasks: list[asyncio.Task[Solution]]) -> None:
    """Cancel tasks (their engine requests are aborted) and wait until they are gone."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
