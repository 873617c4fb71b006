"""Shared fixtures: a scripted Reasoner for unit tests, one real engine for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from reasoner import Reasoner
from reasoner.testing import ScriptedBackend

os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
# The suite runs several CPU engines at once (three workers, servers, engines in subprocesses). vLLM binds each
# engine's OpenMP threads to every core it sees, so five starting engines on two cores spin at each other's
# barriers: five starts and short batches took 147 s, against 108 s with one unbound thread per engine.
# These are set for every process the tests start (engines, `vllm serve`, `reasoner serve`, the CLI).
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Property tests draw the same examples on every run, so `make test` passes or fails the same on any machine
# (a random draw once failed CI on a case no earlier run had tried). To search afresh:
# `HYPOTHESIS_PROFILE=explore pytest ...`; pin what it finds with `@example`.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help=(
            "grade every HumanEval/MBPP reference solution (664) instead of a fixed, seeded sample, and kill the CLI"
            " at its first engine process three times instead of once (`make test-full`)"
        ),
    )


# `make test` runs the suite on three xdist workers (`--dist loadgroup`). Every test that uses one of these
# shared processes goes to the worker of its group: each worker would otherwise start its own copy
# (~30 s each). A test that uses two of them joins their groups into one.
SHARED_PROCESSES = ("engine_reasoner", "prm_engine", "vllm_server", "second_vllm_server", "served")
# The jail's tests run one at a time: the cgroup sweep test leaves a group of a dead owner on purpose,
# which any other grader's sweep would remove first.
JAIL_TESTS = "tests/evals/"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "loadgroup", False):  # set in xdist's workers under --dist loadgroup
        return
    group_of = {name: name for name in SHARED_PROCESSES}

    def root(name: str) -> str:
        while group_of[name] != name:
            name = group_of[name]
        return name

    used = {item: [name for name in SHARED_PROCESSES if name in item.fixturenames] for item in items}
    for names in used.values():
        for name in names[1:]:
            group_of[root(name)] = root(names[0])
    for item, names in used.items():
        marked = item.get_closest_marker("xdist_group")
        if names:
            _join_group(item, root(names[0]))
        elif marked is not None:
            _join_group(item, str(marked.args[0]))
        elif item.nodeid.startswith(JAIL_TESTS):
            _join_group(item, "jail")


def _join_group(item: pytest.Item, group: str) -> None:
    """Give the item xdist's group suffix (`nodeid@group`), which the scheduler reads to place it.

    xdist 3.8 writes the suffix to `item._nodeid`, which pytest 9 no longer reads (a node's id is
    `item._id`), so the group marks alone would place nothing; this writes it where pytest 9 reads it.
    """
    item._id = type(item._id).parse(f"{item.nodeid}@{group}")  # type: ignore[attr-defined]
    if not item.nodeid.endswith(f"@{group}"):
        raise pytest.UsageError(f"could not put {item.nodeid} in the xdist group {group}")


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
