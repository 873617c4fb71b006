"""Admission and draining: solves in flight finish within the deadline, the rest are aborted."""

from __future__ import annotations

import asyncio

import pytest

from reasoner import Budget, Reasoner
from reasoner.testing import ScriptedBackend
from server.config import ServerConfig
from server.errors import APIError
from server.metrics import ServerMetrics
from server.selection import SolvePlan
from server.service import SolveService

LONG = "word " * 200


def service_on(backend: ScriptedBackend, **config: object) -> SolveService:
    reasoner = Reasoner(backend=backend, profile="smollm2")
    return SolveService(reasoner, ServerConfig(model_name="scripted", **config), ServerMetrics())  # type: ignore[arg-type]


async def test_drain_lets_quick_solves_finish_and_aborts_the_rest() -> None:
    backend = ScriptedBackend(lambda prompt: "Final answer: 1" if "quick" in prompt else LONG, delay_s=0.01)
    service = service_on(backend)
    await service.reasoner.asolve("quick warm-up", 8, "direct")  # the first solve of a process imports the graders
    service.admit(2)
    quick = service.start(SolvePlan("quick one", "direct", Budget(tokens=8)))
    slow = service.start(SolvePlan("slow one", "direct", Budget(tokens=400)))
    aborted = await service.drain(timeout_s=1.0)
    assert aborted == 1
    assert quick.result().answer == "1" and slow.cancelled()
    assert [record.aborted for record in backend.requests[1:]] == [False, True]
    assert service.in_flight == 0
    with pytest.raises(APIError) as caught:
        service.admit()
    assert caught.value.status == 503


async def test_solves_past_the_concurrency_wait_for_a_slot() -> None:
    backend = ScriptedBackend("Final answer: 1", delay_s=0.01)
    service = service_on(backend, max_concurrency=1, max_queue=2)
    service.admit(3)
    tasks = [service.start(SolvePlan(f"question {index}", "direct", Budget(tokens=8))) for index in range(3)]
    await asyncio.sleep(0.02)
    assert service.metrics.solves_running._value.get() == 1  # type: ignore[attr-defined]
    assert service.metrics.solves_waiting._value.get() == 2  # type: ignore[attr-defined]
    await asyncio.gather(*tasks)
    assert service.in_flight == 0 and service.metrics.solves_waiting._value.get() == 0  # type: ignore[attr-defined]
