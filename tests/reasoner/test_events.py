"""The `on_event` progress hook of `Reasoner.asolve`, and cancellation aborting a solve's requests."""

from __future__ import annotations

import asyncio

from reasoner import Reasoner
from reasoner.events import SolveEvent
from reasoner.testing import ScriptedBackend


async def test_events_carry_every_request_and_add_up_to_the_usage() -> None:
    backend = ScriptedBackend(["thinking about it", "Final answer: 5"])
    events: list[SolveEvent] = []
    solution = await Reasoner(backend=backend, profile="smollm2").asolve(
        "2 + 3?", budget=64, strategy="elastic", on_event=events.append
    )
    assert sum(event.new_tokens for event in events) == solution.usage.generated_tokens
    assert {event.phase for event in events} == {"thinking", "answer"}
    assert {event.kind for event in events} == {"think", "answer"}
    assert sum(event.finished for event in events) == solution.usage.requests
    assert events[-1].generated_tokens == solution.usage.generated_tokens
    assert "".join(event.text for event in events if event.phase == "thinking") == "thinking about it"


async def test_cancelling_a_solve_aborts_every_engine_request_of_it() -> None:
    backend = ScriptedBackend("one two three four five six seven eight nine ten " * 20, delay_s=0.01)
    reasoner = Reasoner(backend=backend, profile="smollm2")
    events: list[SolveEvent] = []
    solve = asyncio.ensure_future(
        reasoner.asolve("2 + 3?", budget=4000, strategy="self_consistency", n=4, on_event=events.append)
    )
    while len({event.request_id for event in events}) < 4:
        await asyncio.sleep(0.01)
    solve.cancel()
    await asyncio.gather(solve, return_exceptions=True)
    assert solve.cancelled()
    assert len(backend.requests) == 4
    assert all(record.aborted for record in backend.requests)
    assert [event.finish_reason for event in events if event.finished] == ["abort"] * 4
