"""Start the jail from root without handing it root: the grader runs this first when it is root.

bubblewrap started by root maps the jail's user to host root (`uid_map` `0 0 1`), so files
owned by host root, `/proc/sys` first, stay writable from inside however many capabilities are
dropped. Started by an unprivileged user it maps only that user. This launcher, run as root
(`python -I -S -B jail_launcher.py <config-json> <bwrap> <bwrap-args>...`):

1. moves itself into the run's cgroups (`cgroups`: their `cgroup.procs` files; the jail inherits them);
2. enters a private mount namespace and mounts a tmpfs over the run's fresh folder (`stage`),
   where it binds every path the jail binds (`binds`: host path -> staged path, one flat entry
   each, bwrap's own folder among them), so the unprivileged user reaches them whatever the
   folders above allow (an interpreter under `/root`); nothing is created or mounted on the host;
3. drops to `uid` and `gid` with no supplementary groups, then executes bwrap, whose arguments
   already name the staged paths.

Any failure exits 125 with one line on stderr. Standard library only.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
_FAILED = 125


class _Libc:
    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)

    def unshare_mounts(self) -> None:
        if self.libc.unshare(_CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "cannot make a private mount namespace")

    def mount(self, source: str | None, target: str, kind: str | None, flags: int, data: str = "") -> None:
        encoded = [None if value is None else value.encode() for value in (source, target, kind, data)]
        if self.libc.mount(*encoded[:3], flags, encoded[3]) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def launch(config: dict[str, Any], command: list[str]) -> None:
    """Steps 1-3 of the module docstring; returns only by raising."""
    cgroups: list[str] = config["cgroups"]
    stage: str = config["stage"]
    binds: list[tuple[str, str]] = config["binds"]
    uid, gid = int(config["uid"]), int(config["gid"])
    for procs in cgroups:
        with open(procs, "w") as group:
            group.write(str(os.getpid()))
    libc = _Libc()
    libc.unshare_mounts()
    libc.mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # from here no mount reaches the host's table
    libc.mount("tmpfs", stage, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=64k")
    for source, staged in binds:
        if os.path.isdir(source):
            os.mkdir(staged)
        else:
            os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444))
        libc.mount(source, staged, None, _MS_BIND)
    os.chdir("/")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    os.execv(command[0], command)


def main() -> None:
    try:
        launch(json.loads(sys.argv[1]), sys.argv[2:])
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.stderr.write(f"jail launcher: {error}\n")
        sys.exit(_FAILED)


if __name__ == "__main__":
    main()
