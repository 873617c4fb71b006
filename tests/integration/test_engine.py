"""The foundation on the real vLLM engine with the embedded model (slow; CI runs them)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import psutil
import pytest

from reasoner import Budget, EngineError, Outcome, Reasoner, Session, Strategy, register_strategy
from reasoner.engines.cpu_engine import cpu_dtype
from reasoner.events import SolveEvent
from reasoner.testing import forced_lengths

pytestmark = pytest.mark.engine

COUNTING_PROMPT = "Count from 1 to 300, one number per line."


@pytest.fixture
def forced(engine_reasoner: Reasoner) -> Reasoner:
    """The shared engine with every request forced to its full length (the model's end-of-sequence ignored)."""
    return forced_lengths(engine_reasoner)


def engine_core_processes() -> list[psutil.Process]:
    """This process's live vLLM EngineCore descendants (zombies other tests left unreaped are skipped)."""
    cores = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.ZombieProcess, psutil.NoSuchProcess):
            if "EngineCore" in process.name() or "EngineCore" in " ".join(process.cmdline()):
                cores.append(process)
    return cores


@register_strategy
class AbortProbe(Strategy):
    """Test-only strategy: starts a long request, aborts it after a few tokens."""

    name = "test_abort_probe"

    async def run(self, session: Session, prompt: str) -> Outcome:
        text = session.profile.build_prompt(session.tokenizer, prompt, thinking=False)
        request = await session.start(text, max_tokens=session.remaining, phase="answer", kind="answer")
        await request.wait_for_tokens(8)
        generation = await request.abort()
        return Outcome(text=generation.text, answer=None, metrics={"finish_reason": generation.finish_reason})


def test_the_embedded_model_answers(engine_reasoner: Reasoner) -> None:
    solution = engine_reasoner.solve("What is 12 + 30?", budget=64)
    assert solution.answer is not None
    assert solution.usage.generated_tokens > 0
    assert solution.usage.prompt_tokens > 0
    assert solution.latency_s > 0


def test_the_model_runs_in_the_engine_core_process_in_the_cpus_format_and_the_variable_is_given_back(
    engine_reasoner: Reasoner,
) -> None:
    engine_reasoner.start()
    names = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            names.append(f"{process.name()} {' '.join(process.cmdline())}")  # the name is cut at 15 characters
    assert any("EngineCore" in name for name in names)
    assert not [name for name in names if "Worker" in name]
    assert os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") is None
    engine = engine_reasoner.backend.engine  # type: ignore[attr-defined]
    assert str(engine.model_config.dtype) == f"torch.{cpu_dtype()}"


@pytest.mark.parametrize("tokens", [4, 9, 33])
def test_generated_tokens_never_exceed_the_budget(engine_reasoner: Reasoner, tokens: int) -> None:
    solution = engine_reasoner.solve(COUNTING_PROMPT, budget=tokens)
    assert 0 < solution.usage.generated_tokens <= tokens


def test_a_shared_batch_budget_holds_on_the_engine(engine_reasoner: Reasoner) -> None:
    solutions = engine_reasoner.solve_many([COUNTING_PROMPT] * 4, budget=Budget(tokens=100))
    assert sum(solution.usage.generated_tokens for solution in solutions) <= 100


def test_abort_saves_the_tokens_it_would_have_made(forced: Reasoner) -> None:
    solution = forced.solve(COUNTING_PROMPT, budget=400, strategy="test_abort_probe")
    assert solution.metrics["finish_reason"] == "abort"
    assert solution.usage.generated_tokens < 400
    assert solution.usage.aborted_tokens_saved == 400 - solution.usage.generated_tokens


def test_a_repeated_prefix_hits_the_prefix_cache(engine_reasoner: Reasoner) -> None:
    long_prompt = "Here is some context that repeats. " * 12 + "What is 3 + 4?"
    before = engine_reasoner.backend.cache_stats()
    engine_reasoner.solve(long_prompt, budget=8)
    second = engine_reasoner.solve(long_prompt, budget=8)
    after = engine_reasoner.backend.cache_stats()
    assert second.usage.cached_prompt_tokens >= 32
    assert after.prefix_cache_hits - before.prefix_cache_hits >= second.usage.cached_prompt_tokens
    assert after.prefix_cache_queries > before.prefix_cache_queries


def test_engine_death_is_an_engine_error_and_the_next_call_restarts(
    engine_reasoner: Reasoner, forced: Reasoner
) -> None:
    engine_cores = engine_core_processes()
    assert engine_cores, "no EngineCore process found to kill"

    async def solve_while_killing() -> None:
        generating = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_event(event: SolveEvent) -> None:  # called on the engine's loop thread, not this one
            loop.call_soon_threadsafe(generating.set)

        # 2000 forced tokens take far longer than the kill: the solve is mid-request when the engine dies.
        pending = asyncio.ensure_future(forced.asolve(COUNTING_PROMPT, budget=2000, on_event=on_event))
        await asyncio.wait_for(generating.wait(), timeout=60)
        assert not pending.done()
        for process in engine_cores:
            process.kill()
        await pending

    with pytest.raises(EngineError):
        asyncio.run(solve_while_killing())
    solution = engine_reasoner.solve("What is 1 + 1?", budget=16)
    assert solution.usage.generated_tokens > 0


def test_an_engine_that_died_while_idle_is_restarted_by_the_next_call(engine_reasoner: Reasoner) -> None:
    engine_cores = engine_core_processes()
    assert engine_cores, "no EngineCore process found to kill"
    for process in engine_cores:
        process.kill()
    psutil.wait_procs(engine_cores, timeout=30)
    engine = engine_reasoner.backend.engine  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while not engine.errored and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.errored, "vLLM never noticed its engine died"
    restarts = engine_reasoner.backend.restarts  # type: ignore[attr-defined]
    solution = engine_reasoner.solve("What is 1 + 1?", budget=16)
    assert solution.usage.generated_tokens > 0
    assert engine_reasoner.backend.restarts == restarts + 1  # type: ignore[attr-defined]
