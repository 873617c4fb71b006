"""vLLM's request errors become the toolkit's in one place, for the local backend and the PRM scorer."""

from __future__ import annotations

from types import SimpleNamespace

from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

from reasoner import EngineError, PromptError
from reasoner.engines.lifecycle import engine_error, track_engine_owner, untrack_engine_owner


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
    from reasoner.engines import lifecycle

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
