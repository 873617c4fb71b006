"""The inner layer of the opt-in process sandbox (`sandbox="process"`): an audit hook.

Where the OS jail cannot run and the user opted in, the candidate runs in a plain child process
and this hook (which cannot be removed from Python) refuses process creation, signals, sockets,
ctypes, writes outside the fresh working directory and reads outside it and the standard
library; the few dangerous calls that raise no audit event (pidfd, mknod, chroot) are deleted,
and the process enters its own network namespace where the kernel lets it. Code that
introspects the interpreter can get around a hook: only the jail (`evals.jail`) is a boundary.
The verdict stays safe either way, because the judge decides it in another process.
Standard library only: the answerer loads it by file path.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
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
        "sqlite3.connect",
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
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_UNAUDITED = {"os": ("pidfd_open", "mknod", "mkfifo", "chroot", "fchdir"), "signal": ("pidfd_send_signal",)}


class Policy:
    """The audit hook: which operations the candidate may perform."""

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
        elif event in ("os.listdir", "os.scandir"):
            self._check_path(args[0] if args[0] is not None else ".", writing=False)

    def _check_path(self, path: Any, writing: bool) -> None:
        if isinstance(path, int):
            return
        resolved = os.path.realpath(os.fsdecode(path))
        roots = (self.workdir,) if writing else (self.workdir, *self.read_roots)
        if not any(resolved == root or resolved.startswith(root.rstrip("/") + "/") for root in roots):
            action = "write" if writing else "read"
            raise PermissionError(f"blocked by the sandbox: {action} {resolved}")


def install(settings: dict[str, Any]) -> None:
    """Delete the calls that raise no audit event, then add the hook (after `isolate_network`)."""
    for module_name, names in _UNAUDITED.items():
        for name in names:
            for module in (sys.modules.get(module_name), sys.modules.get("posix")):
                if module is not None and hasattr(module, name):
                    delattr(module, name)
    read_roots = (os.path.dirname(os.__file__), "/dev/null", "/dev/urandom", "/dev/zero", "/usr/share/zoneinfo")
    sys.dont_write_bytecode = True
    sys.addaudithook(Policy(os.path.realpath(settings["workdir"]), read_roots))


def isolate_network() -> bool:
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
