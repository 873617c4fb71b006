"""One judged run: the candidate in the jail, the judge beside it, the verdict from the judge.

The grader starts two fresh interpreters (standard library only, empty environment) joined by
two pipes: the candidate (`evals.answerer`) inside the OS jail of `evals.jail`, and the trusted
judge (`evals.judge`) outside it, which alone holds the pipe the verdict comes back on. The jail
runs inside a fresh cgroup of `evals.cgroup_limits` (where the grader may make one; as root it
must), with rlimits (CPU seconds, address space, file size, open files, processes, no core
dumps) set before the program loads. When the jail cannot start, grading refuses with
`SandboxUnavailableError` naming the cause; code never runs outside it (the former opt-in
`process` sandbox, an audit hook in the candidate's own process, is refused with `InputError`:
code that reaches the interpreter's internals could switch the hook off and forge a pass).

When the grade ends (verdict, wall-clock limit or crash), both processes are killed; the jail's
PID namespace and cgroup take every process it started with it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evals import cgroup_limits
from evals.jail import ANSWERER_DIR, interpreter, jail_command, launch_command, require_jail
from reasoner.errors import InputError, SandboxUnavailableError

Isolation = Literal["jail"]
RunStatus = Literal["passed", "failed", "error", "timeout", "crashed"]
ISOLATIONS: tuple[Isolation, ...] = ("jail",)
_HERE = Path(__file__).resolve().parent
_VERDICT_MAX_BYTES = 1 << 20  # a verdict's detail is at most 500 characters; this only bounds a broken judge
_SCRUBBED_ENV = {"PATH": "/nonexistent", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one judged run."""

    wall_s: float = 10.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    tmp_bytes: int = 32 << 20
    open_files: int = 64
    processes: int = 32

    def rlimits(self) -> dict[str, int]:
        """The candidate's rlimits by `resource` name (CPU: the wall limit rounded up)."""
        return {
            "RLIMIT_CPU": max(1, math.ceil(self.wall_s)),
            "RLIMIT_AS": self.memory_bytes,
            "RLIMIT_FSIZE": self.file_bytes,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_CORE": 0,
        }


@dataclass(frozen=True)
class JudgedRun:
    """How a judged run ended: the judge's verdict, or `timeout`."""

    status: RunStatus
    detail: str
    duration_s: float


def check_sandbox_choice(sandbox: object) -> None:
    """`InputError` unless `sandbox` names an isolation that exists (only `jail`)."""
    if sandbox == "process":
        raise InputError(
            "sandbox='process' (--sandbox process) was removed: an audit hook in the candidate's own "
            "process could be switched off and a wrong answer reported as passed; code runs only in "
            "the OS jail (sandbox='jail', the default)"
        )
    if sandbox not in ISOLATIONS:
        raise InputError(f"sandbox must be one of {', '.join(ISOLATIONS)}, got {sandbox!r}")


def run_judged(program: str, problem: dict[str, str], limits: SandboxLimits) -> JudgedRun:
    """Run `program` (prompt + completion) jailed as the candidate and `problem`'s tests in the judge (blocking)."""
    group = _open_group(limits)
    try:
        with tempfile.TemporaryDirectory(prefix="reasoner-grade-") as workdir:
            verdict, timed_out, candidate_status, duration_s = _run(program, problem, limits, group, workdir)
    finally:
        if group is not None and not group.close():
            raise SandboxUnavailableError(f"a jailed run's cgroup could not be emptied: {group.directories}")
    if timed_out or (verdict.get("status") == "crashed" and candidate_status in _CPU_LIMIT_STATUSES):
        return JudgedRun("timeout", "time limit exceeded", duration_s)
    if verdict.get("status") not in ("passed", "failed", "error", "crashed"):
        return JudgedRun("error", "the judge ended without a verdict", duration_s)
    return JudgedRun(verdict["status"], str(verdict.get("detail", "")), duration_s)


def _run(
    program: str, problem: dict[str, str], limits: SandboxLimits, group: cgroup_limits.RunGroup | None, workdir: str
) -> tuple[dict[str, Any], bool, int | None, float]:
    """Start both processes, wait for the judge or the wall limit, kill both; the verdict and how it ended."""
    pipes = _Pipes()
    candidate = judge = None
    started = time.monotonic()
    try:
        candidate = _start_candidate(limits, pipes, group, workdir)
        judge = _start_judge(problem, limits, pipes)
        _send(judge, problem, pipes, limits)
        pipes.close_child_ends()
        _send_program(pipes, program)
        timed_out = not _wait(judge, limits.wall_s - (time.monotonic() - started))
        candidate_status = candidate.poll()
        verdict = _read_verdict(pipes.verdict_read)
    finally:
        for process in (judge, candidate):
            if process is not None:
                _kill(process)
        pipes.close_all()
    return verdict, timed_out, candidate_status, time.monotonic() - started


_CPU_LIMIT_STATUSES = (-signal.SIGXCPU, 128 + signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGKILL)


class _Pipes:
    """requests (judge -> candidate), replies (candidate -> judge), verdict (judge -> grader)."""

    def __init__(self) -> None:
        self.requests_read, self.requests_write = os.pipe()
        self.replies_read, self.replies_write = os.pipe()
        self.verdict_read, self.verdict_write = os.pipe()

    def close_child_ends(self) -> None:
        for name in ("requests_read", "replies_write", "replies_read", "verdict_write"):
            self._close(name)

    def close_all(self) -> None:
        for name in ("requests_read", "requests_write", "replies_read", "replies_write"):
            self._close(name)
        for name in ("verdict_read", "verdict_write"):
            self._close(name)

    def _close(self, name: str) -> None:
        fd = getattr(self, name)
        if fd >= 0:
            os.close(fd)
            setattr(self, name, -1)


def check_isolation(isolation: Isolation = "jail") -> None:
    """Raise `SandboxUnavailableError` (naming the cause) when the jail cannot run here; call before long runs."""
    check_sandbox_choice(isolation)
    require_jail()
    problem = cgroup_limits.cgroup_problem()
    if problem is not None and os.getuid() == 0:
        raise SandboxUnavailableError(_ROOT_WITHOUT_CGROUP.format(problem=problem))


_ROOT_WITHOUT_CGROUP = (
    "{problem}: as root, process and memory limits of the jail need a cgroup; "
    "run as another user, or mount the cgroup v1 pids and memory hierarchies writable"
)


def _open_group(limits: SandboxLimits) -> cgroup_limits.RunGroup | None:
    check_isolation()
    if cgroup_limits.cgroup_problem() is not None:
        return None  # not root: the rlimits (RLIMIT_NPROC included) hold
    try:
        return cgroup_limits.open_group(limits.memory_bytes + limits.tmp_bytes, limits.processes)
    except OSError as error:
        if os.getuid() == 0:
            raise SandboxUnavailableError(
                _ROOT_WITHOUT_CGROUP.format(problem=f"cannot create a cgroup: {error}")
            ) from None
        return None


def _start_candidate(
    limits: SandboxLimits, pipes: _Pipes, group: cgroup_limits.RunGroup | None, workdir: str
) -> subprocess.Popen[bytes]:
    rlimits = limits.rlimits()
    if os.getuid() != 0:
        rlimits["RLIMIT_NPROC"] = _user_task_count() + limits.processes
    config = json.dumps({"limits": rlimits})
    command = [*jail_command(limits.tmp_bytes), interpreter(), "-I", "-S", "-B", f"{ANSWERER_DIR}/answerer.py", config]
    if os.geteuid() == 0:  # the launcher enters the cgroups, then drops root before bwrap starts
        command = launch_command(command, workdir, group.procs_files() if group is not None else ())
    elif group is not None:
        command = group.wrap(command)
    return subprocess.Popen(
        command,
        stdin=pipes.requests_read,
        stdout=pipes.replies_write,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
        env={**_SCRUBBED_ENV, "HOME": workdir, "TMPDIR": workdir},
        start_new_session=True,
    )


def _start_judge(problem: dict[str, str], limits: SandboxLimits, pipes: _Pipes) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [interpreter(), "-I", "-S", "-B", str(_HERE / "judge.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_SCRUBBED_ENV,
        start_new_session=True,
        pass_fds=(pipes.requests_write, pipes.replies_read, pipes.verdict_write),
    )


def _send(judge: subprocess.Popen[bytes], problem: dict[str, str], pipes: _Pipes, limits: SandboxLimits) -> None:
    config = {
        **{key: problem[key] for key in ("prompt", "test", "entry_point")},
        "requests_fd": pipes.requests_write,
        "replies_fd": pipes.replies_read,
        "verdict_fd": pipes.verdict_write,
        "memory_bytes": max(limits.memory_bytes, 1 << 30),
    }
    assert judge.stdin is not None
    with contextlib.suppress(OSError):
        judge.stdin.write(json.dumps(config).encode())
        judge.stdin.close()


def _send_program(pipes: _Pipes, program: str) -> None:
    """The program goes first down the requests pipe, before the judge's first request."""
    from evals import wire

    with contextlib.suppress(OSError):
        os.write(pipes.requests_write, wire.dump_line({"program": program}))


def _wait(judge: subprocess.Popen[bytes], timeout_s: float) -> bool:
    try:
        judge.wait(timeout=max(0.0, timeout_s))
    except subprocess.TimeoutExpired:
        return False
    return True


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _read_verdict(fd: int) -> dict[str, Any]:
    """What the judge wrote, read whole (up to a bound far above any verdict); {} when nothing or not JSON."""
    os.set_blocking(fd, False)
    data = b""
    while len(data) <= _VERDICT_MAX_BYTES:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    try:
        verdict = json.loads(data)
    except ValueError:
        return {}
    return verdict if isinstance(verdict, dict) else {}


def _user_task_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
    return count
