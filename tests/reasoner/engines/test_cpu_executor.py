"""The single-process executor on CPU: chosen unless the caller chose, and the variable vLLM reads scoped to builds."""

from __future__ import annotations

import os
import threading

import pytest

from reasoner.engines.cpu_executor import executor_kept, server_variables, with_cpu_executor
from reasoner.engines.vllm_server import CPU_SERVER_ARGS

VARIABLE = "VLLM_ENABLE_V1_MULTIPROCESSING"
UNI = {"distributed_executor_backend": "uni"}


def test_cpu_engines_get_the_single_process_executor_unless_the_caller_chose_one() -> None:
    assert with_cpu_executor({"model": "m"}, on_cpu=True) == {"model": "m"} | UNI
    assert with_cpu_executor({"distributed_executor_backend": "mp"}, on_cpu=True) == {
        "distributed_executor_backend": "mp"
    }
    assert with_cpu_executor({"model": "m"}, on_cpu=False) == {"model": "m"}


@pytest.mark.parametrize("before", [None, "1"])
def test_the_variable_is_set_only_while_a_uni_build_runs_and_restored_after(
    monkeypatch: pytest.MonkeyPatch, before: str | None
) -> None:
    if before is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, before)
    with executor_kept(UNI):
        assert os.environ[VARIABLE] == "0"
    assert os.environ.get(VARIABLE) == before
    with executor_kept({"distributed_executor_backend": "mp"}):
        assert os.environ.get(VARIABLE) == before


def test_overlapping_builds_keep_the_variable_until_the_last_one_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[str | None] = []

    def first() -> None:
        with executor_kept(UNI):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with executor_kept(UNI):
            second_in.set()
            first_out.wait(10)
            seen.append(os.environ.get(VARIABLE))  # the first build has ended: still set for this one

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen == ["0"]
    assert VARIABLE not in os.environ


def test_a_server_asking_for_uni_gets_the_variable_in_its_environment() -> None:
    assert server_variables(CPU_SERVER_ARGS) == {VARIABLE: "0"}
    assert server_variables(["--distributed-executor-backend=uni"]) == {VARIABLE: "0"}
    assert server_variables(["--distributed-executor-backend", "mp"]) == {}
    assert server_variables(["--distributed-executor-backend"]) == {}
