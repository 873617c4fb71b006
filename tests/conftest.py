"""Shared fixtures: a scripted Reasoner for unit tests, one real engine for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from reasoner import Reasoner
from reasoner.testing import ScriptedBackend

os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="grade every HumanEval/MBPP reference solution (664) instead of a fixed, seeded sample (`make test-full`)",
    )


@pytest.fixture
def full_run(request: pytest.FixtureRequest) -> bool:
    """True under `--full` (`make test-full`): tests that sample a large set take all of it."""
    return bool(request.config.getoption("--full"))


@pytest.fixture
def scripted() -> ScriptedBackend:
    return ScriptedBackend("The sum is 5.\n\nFinal answer: 5")


@pytest.fixture
def scripted_reasoner(scripted: ScriptedBackend) -> Reasoner:
    return Reasoner(backend=scripted, profile="smollm2")


@pytest.fixture(scope="session")
def engine_reasoner() -> Iterator[Reasoner]:
    """The embedded model on the real vLLM engine, shared by every engine test of the run."""
    reasoner = Reasoner()
    reasoner.start()
    yield reasoner
    reasoner.close()
