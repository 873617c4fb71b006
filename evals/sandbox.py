"""Run untrusted Python source in a locked-down child process and report how it ended.

Layers, outermost first:
- a fresh interpreter (`python -I -S`: standard library only) in its own session, killed
  as a group on the wall-clock limit; an empty environment but for PATH, HOME, TMPDIR, LANG;
- kernel limits set before the code runs: CPU seconds, address space, file size, open files,
  processes (effective for non-root users), no core dumps;
- its own network namespace where the kernel permits one (else sockets are still refused);
- a Python audit hook (which cannot be removed from Python) that refuses process creation,
  signals to other processes, sockets, ctypes, writes outside the fresh working directory,
  reads outside it and the standard library (so no /proc/<pid>/environ, no home secrets);
  the few dangerous calls that raise no audit event (pidfd, mknod, chroot) are deleted.
The verdict comes from a nonce-tagged report the child writes to a private pipe after the
code returns, so `exit(0)` or `os._exit(0)` cannot pass for success. This guards against what
generated code does by accident or by simple attack; a container is the boundary for code
that deliberately introspects the interpreter.

Run as a script, this module is the child's entry point (stdlib imports only, for `-S`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import subprocess

SandboxOutcome = Literal["returned", "raised", "timeout", "crashed"]

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_REPORT_BYTES = 4096
_MESSAGE_CHARS = 1000


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one sandboxed run."""

    wall_s: float = 10.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64
    processes: int = 32
    output_bytes: int = 8192

    @property
    def cpu_s(self) -> int:
        """CPU-seconds limit: the wall limit rounded up (a single thread cannot use more)."""
        return max(1, math.ceil(self.wall_s))


@dataclass(frozen=True)
class SandboxRun:
    """How a sandboxed run ended.

    outcome: `returned` (the code ran to its end), `raised` (an exception escaped it, named in
    `exception_type` and `message`), `timeout` (wall or CPU limit), `crashed` (the process
    died without reporting: a signal, `os._exit`, a broken interpreter).
    """

    outcome: SandboxOutcome
    exception_type: str
    message: str
    returncode: int | None
    output: str
    network_isolated: bool
    duration_s: float


def run_sandboxed(source: str, limits: SandboxLimits | None = None) -> SandboxRun:
    """Run `source` as a module in the sandbox and wait for it (blocking; call from a thread)."""
    import subprocess  # not at module level: the child must never hold a reference to it

    limits = limits or SandboxLimits()
    with tempfile.TemporaryDirectory(prefix="reasoner-sandbox-") as root:
        workdir = os.path.join(root, "work")
        os.mkdir(workdir, 0o700)
        program_path = os.path.join(workdir, "program.py")
        with open(program_path, "w", encoding="utf-8") as program:
            program.write(source)
        nonce = secrets.token_hex(16)
        report_read, report_write = os.pipe()
        os.set_blocking(report_read, False)
        config = {"nonce": nonce, "report_fd": report_write, "program": program_path, "limits": limits.__dict__}
        started = time.monotonic()
        timed_out = False
        try:
            with open(os.path.join(root, "output.log"), "w+b") as output:
                process = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__)],
                    stdin=subprocess.PIPE,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    env={"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"},
                    start_new_session=True,
                    pass_fds=(report_write,),
                )
                os.close(report_write)
                report_write = -1
                _send_config(process, config)
                try:
                    process.wait(timeout=limits.wall_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:
                    _kill_group(process.pid)
                    process.wait()
                duration_s = time.monotonic() - started
                output_tail = _tail(output, limits.output_bytes)
            report = _read_report(report_read, nonce)
        finally:
            os.close(report_read)
            if report_write >= 0:
                os.close(report_write)
    return _classify(report, process.returncode, timed_out, output_tail, duration_s)


def _send_config(process: subprocess.Popen[bytes], config: dict[str, Any]) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(json.dumps(config).encode())
        process.stdin.close()
    except OSError:
        pass  # the child died before reading its configuration: classified as crashed


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail(output: Any, limit: int) -> str:
    output.seek(0, os.SEEK_END)
    size = output.tell()
    output.seek(max(0, size - limit))
    return str(output.read().decode("utf-8", errors="replace"))


def _read_report(fd: int, nonce: str) -> dict[str, Any] | None:
    try:
        data = os.read(fd, _REPORT_BYTES)
    except BlockingIOError:
        return None
    prefix, _, body = data.decode("utf-8", errors="replace").partition(" ")
    if prefix != nonce:
        return None
    try:
        report = json.loads(body)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def _classify(
    report: dict[str, Any] | None, returncode: int | None, timed_out: bool, output: str, duration_s: float
) -> SandboxRun:
    isolated = bool(report and report.get("network_isolated"))
    if timed_out or (returncode == -signal.SIGXCPU and report is None):
        return SandboxRun("timeout", "", "time limit exceeded", returncode, output, isolated, duration_s)
    if report is None or report.get("outcome") not in ("returned", "raised"):
        reason = f"exit status {returncode}"
        if returncode is not None and returncode < 0:
            reason = f"killed by signal {-returncode}"
            with contextlib.suppress(ValueError):
                reason = f"killed by {signal.Signals(-returncode).name}"
        message = f"no report from the sandboxed code ({reason})"
        return SandboxRun("crashed", "", message, returncode, output, isolated, duration_s)
    return SandboxRun(
        report["outcome"],
        str(report.get("exception_type", "")),
        str(report.get("message", "")),
        returncode,
        output,
        isolated,
        duration_s,
    )


# ---- the child side: runs in the fresh interpreter, before and around the untrusted code ----

_DENIED_EVENTS = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "os.startfile",
        "subprocess.Popen",
        "os.kill",
        "os.killpg",
        "os.chdir",
        "resource.setrlimit",
        "resource.prlimit",
    }
)
_DENIED_PREFIXES = ("socket.", "ctypes.")
_DENIED_IMPORTS = frozenset(
    {"ctypes", "_ctypes", "_posixsubprocess", "subprocess", "multiprocessing", "posix", "os", "signal", "_signal"}
)
_WRITE_EVENTS = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "os.chflags": (0,),
    "os.lchflags": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_UNAUDITED = {"os": ("pidfd_open", "mknod", "mkfifo", "chroot", "fchdir"), "signal": ("pidfd_send_signal",)}


class _Policy:
    """The audit hook: which operations the untrusted code may perform."""

    def __init__(self, workdir: str, read_roots: tuple[str, ...]) -> None:
        self.workdir = workdir
        self.read_roots = read_roots

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event in _DENIED_EVENTS or event.startswith(_DENIED_PREFIXES):
            raise PermissionError(f"blocked by the sandbox: {event}")
        if event == "import" and args[0] in _DENIED_IMPORTS:
            raise PermissionError(f"blocked by the sandbox: import {args[0]}")
        if event == "open":
            path, mode, flags = args
            writing = bool((flags or 0) & _WRITE_FLAGS) or any(letter in (mode or "") for letter in "wax+")
            self._check_path(path, writing)
        elif event in _WRITE_EVENTS:
            for index in _WRITE_EVENTS[event]:
                self._check_path(args[index], writing=True)

    def _check_path(self, path: Any, writing: bool) -> None:
        if isinstance(path, int):
            return
        resolved = os.path.realpath(os.fsdecode(path))
        roots = (self.workdir,) if writing else (self.workdir, *self.read_roots)
        if not any(resolved == root or resolved.startswith(root.rstrip("/") + "/") for root in roots):
            action = "write" if writing else "read"
            raise PermissionError(f"blocked by the sandbox: {action} {resolved}")


def _child_main() -> None:
    config = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - replaces the consumed config stream
    limits = config["limits"]
    _set_limits(limits)
    network_isolated = _isolate_network()
    workdir = os.path.realpath(os.getcwd())
    with open(config["program"], encoding="utf-8") as program:
        source = program.read()
    read_roots = (os.path.dirname(os.__file__), "/dev/null", "/dev/urandom", "/dev/zero", "/usr/share/zoneinfo")
    for module_name, names in _UNAUDITED.items():
        for name in names:
            for module in (sys.modules[module_name], sys.modules.get("posix")):
                if module is not None and hasattr(module, name):
                    delattr(module, name)
    report = _report_writer(config["nonce"], config["report_fd"], network_isolated)
    sys.dont_write_bytecode = True
    sys.addaudithook(_Policy(workdir, read_roots))
    try:
        exec(compile(source, config["program"], "exec"), {"__name__": "__sandbox__"})
    except BaseException as error:  # noqa: BLE001 - every way the code can end is reported
        report("raised", error)
    else:
        report("returned", None)


def _report_writer(nonce: str, fd: int, network_isolated: bool) -> Any:
    write, dumps, exit_now, suppress = os.write, json.dumps, os._exit, contextlib.suppress
    flush_out, flush_err = sys.stdout.flush, sys.stderr.flush

    def report(outcome: str, error: BaseException | None) -> None:
        message = ""
        if error is not None:
            try:
                message = str(error)[:_MESSAGE_CHARS]
            except Exception:  # noqa: BLE001 - a hostile __str__ must not hide the outcome
                message = "<unprintable>"
        body = {
            "outcome": outcome,
            "exception_type": type(error).__name__ if error is not None else "",
            "message": message,
            "network_isolated": network_isolated,
        }
        for flush in (flush_out, flush_err):
            with suppress(Exception):  # the code may have closed or replaced its output
                flush()
        write(fd, f"{nonce} {dumps(body)}".encode()[:_REPORT_BYTES])
        exit_now(0)

    return report


def _set_limits(limits: dict[str, Any]) -> None:
    import resource

    wanted = {
        resource.RLIMIT_CPU: math.ceil(limits["wall_s"]),
        resource.RLIMIT_AS: limits["memory_bytes"],
        resource.RLIMIT_FSIZE: limits["file_bytes"],
        resource.RLIMIT_NOFILE: limits["open_files"],
        resource.RLIMIT_CORE: 0,
    }
    if os.getuid() != 0:
        wanted[resource.RLIMIT_NPROC] = _user_task_count() + limits["processes"]
    for limit, value in wanted.items():
        hard = value + 1 if limit == resource.RLIMIT_CPU else value  # SIGXCPU first, SIGKILL a second later
        resource.setrlimit(limit, (value, hard))


def _user_task_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


def _isolate_network() -> bool:
    """Enter a fresh network namespace (no interfaces up); False where the kernel refuses."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        isolated = libc.unshare(_CLONE_NEWNET) == 0
        if not isolated:
            uid, gid = os.getuid(), os.getgid()
            if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
                for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                    with open(f"/proc/self/{name}", "w") as handle:
                        handle.write(text)
                isolated = True
    except (OSError, AttributeError, ImportError):
        isolated = False
    for name in [name for name in sys.modules if name == "ctypes" or name.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]
    return isolated


if __name__ == "__main__":
    _child_main()
