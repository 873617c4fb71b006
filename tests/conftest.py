"""Shared fixtures: a scripted Reasoner for unit tests, one real engine for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from reasoner import Reasoner
from reasoner.testing import ScriptedBackend

os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")


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
