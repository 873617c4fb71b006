"""One way to hold a vLLM engine and one mapping of its request errors, for the backend and the pooling engines."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from engine_support import FakeEngine
from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

from reasoner import EngineError, PromptError
from reasoner.engines import lifecycle
from reasoner.engines.lifecycle import EngineHolder, engine_error, track_engine_owner, untrack_engine_owner


def died(cause: BaseException) -> EngineError:
    return EngineError(f"died: {type(cause).__name__}")


def test_input_the_engine_refused_is_the_callers_error() -> None:
    error = engine_error(SimpleNamespace(errored=False), ValueError("too long"), "request r1", died)
    assert isinstance(error, PromptError) and "request r1" in str(error) and "too long" in str(error)


def test_a_scorer_may_map_refused_input_to_an_engine_error() -> None:
    error = engine_error(SimpleNamespace(errored=False), ValueError("bad"), "the PRM request", died, EngineError)
    assert type(error) is EngineError


def test_a_dead_engine_is_reported_by_its_owner() -> None:
    assert str(engine_error(SimpleNamespace(errored=False), EngineDeadError(), "r", died)) == "died: EngineDeadError"
    errored = engine_error(SimpleNamespace(errored=True), EngineGenerateError(), "r", died)
    assert str(errored) == "died: EngineGenerateError"


def test_a_failed_request_on_a_live_engine_is_an_engine_error_naming_it() -> None:
    error = engine_error(SimpleNamespace(errored=False), EngineGenerateError(), "request r7", died)
    assert isinstance(error, EngineError) and "request r7 failed in the engine" in str(error)


def test_owners_are_shut_down_at_exit_unless_untracked() -> None:
    class Owner:
        closed = 0

        def shutdown(self) -> None:
            self.closed += 1

    kept, dropped = Owner(), Owner()
    track_engine_owner(kept)
    track_engine_owner(dropped)
    untrack_engine_owner(dropped)
    lifecycle._shut_down_live_engines()
    assert (kept.closed, dropped.closed) == (1, 0)
    untrack_engine_owner(kept)


class Holder(EngineHolder):
    """Builds the engines it is given, in order."""

    def __init__(self, *engines: FakeEngine):
        self.engines = list(engines)

    def _build_engine(self) -> Any:
        return self.engines.pop(0)

    def engine_label(self) -> str:
        return "the test engine"


async def test_callers_waiting_together_get_one_engine_and_its_owner_is_shut_down_at_exit() -> None:
    holder = Holder(FakeEngine(), FakeEngine())
    engines = await asyncio.gather(*(holder._started() for _ in range(3)))
    assert engines[0] is engines[1] is engines[2] and holder.starts == 1
    assert holder in lifecycle._live_owners
    holder.shutdown()


async def test_shutdown_stops_the_engine_once_and_the_exit_hook_forgets_the_owner() -> None:
    engine = FakeEngine()
    holder = Holder(engine)
    await holder._started()
    holder.shutdown()
    holder.shutdown()
    assert (engine.shutdowns, holder.running) == (1, False)
    assert holder not in lifecycle._live_owners


async def test_an_engine_that_died_while_idle_is_replaced_at_the_next_start() -> None:
    dead, fresh = FakeEngine(), FakeEngine()
    holder = Holder(dead, fresh)
    await holder._started()
    dead.errored = True
    assert await holder._started() is fresh
    assert (dead.shutdowns, holder.starts, holder.restarts) == (1, 2, 1)
    holder.shutdown()


async def test_a_request_on_a_dead_engine_drops_it_and_says_which_engine_died() -> None:
    engine = FakeEngine()
    holder = Holder(engine)
    await holder._started()
    died = "the test engine died .*EngineDeadError.*the next call starts a fresh one"
    with pytest.raises(EngineError, match=died), holder._vllm_errors(engine, "request r1"):
        raise EngineDeadError()
    assert (holder.running, engine.shutdowns, holder.restarts) == (False, 1, 1)


@pytest.mark.parametrize("refused", [PromptError, EngineError])
async def test_a_refused_request_is_the_error_the_caller_names_and_the_engine_stays(refused: type[Exception]) -> None:
    engine = FakeEngine()
    holder = Holder(engine)
    await holder._started()
    with (
        pytest.raises(refused, match="the engine refused request r2: too long") as caught,
        holder._vllm_errors(engine, "request r2", refused),
    ):
        raise ValueError("too long")
    assert type(caught.value) is refused
    assert holder.running and engine.shutdowns == 0
    holder.shutdown()
