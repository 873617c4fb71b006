"""CPU engines: the single-process executor and the CPU's number format unless the caller chose, the variable vLLM
reads scoped to builds."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from reasoner.engines.cpu_engine import cpu_dtype, executor_kept, server_variables, with_cpu_choices
from reasoner.engines.vllm_server import cpu_server_args

VARIABLE = "VLLM_ENABLE_V1_MULTIPROCESSING"
UNI = {"distributed_executor_backend": "uni"}


def test_cpu_engines_get_the_single_process_executor_and_the_cpus_format_unless_the_caller_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("reasoner.engines.cpu_engine.cpu_dtype", lambda: "float32")
    assert with_cpu_choices({"model": "m"}, on_cpu=True) == {"model": "m", "dtype": "float32"} | UNI
    chosen = {"distributed_executor_backend": "mp", "dtype": "bfloat16"}
    assert with_cpu_choices(chosen, on_cpu=True) == chosen
    assert with_cpu_choices({"model": "m"}, on_cpu=False) == {"model": "m"}


@pytest.mark.parametrize(
    ("bf16", "amx", "expected"), [(True, False, "bfloat16"), (False, True, "bfloat16"), (False, False, "float32")]
)
def test_bfloat16_only_where_the_cpu_computes_it_natively(
    monkeypatch: pytest.MonkeyPatch, bf16: bool, amx: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert cpu_dtype() == expected


def test_a_torch_without_the_cpu_checks_gets_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert cpu_dtype() == "float32"


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
    assert server_variables(cpu_server_args()) == {VARIABLE: "0"}
    assert server_variables(["--distributed-executor-backend=uni"]) == {VARIABLE: "0"}
    assert server_variables(["--distributed-executor-backend", "mp"]) == {}
    assert server_variables(["--distributed-executor-backend"]) == {}
