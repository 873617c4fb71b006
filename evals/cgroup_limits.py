"""Process and memory limits that hold for root: a fresh cgroup (v1 `pids` and `memory`) per run.

rlimits cap each process of the jail, but `RLIMIT_NPROC` counts every process of the jail's host
user (as root that is `nobody`, shared with other runs and daemons), and `RLIMIT_AS` is per
process. Where the grader may create cgroups (root on a host with the v1 hierarchy mounted at
/sys/fs/cgroup), each run gets its own group under ours: `pids.max` caps its processes,
`memory.limit_in_bytes` its memory (tmpfs pages included). The jail is moved in before `bwrap` is
executed (as root by `evals.jail_launcher`, otherwise by a one-line shell), so every process it
ever starts is inside. At the
end every process still in the group is killed and the group removed; a group that cannot be
emptied is reported, never silently left.

A run killed before its end (`kill -9` of the grader) leaves its group behind. Group names carry
the owner's PID namespace and PID, so the first group a process opens first sweeps the stale
ones: those whose owner is gone (in this PID namespace, no such process), with whatever still
runs in them, and empty ones older than `ABANDONED_AFTER_S` whatever their name (a live run's
group is empty only for the moment before its jail enters). Groups of live graders, and
non-empty groups of other PID namespaces (containers sharing the hierarchy), are left alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP_PREFIX = "reasoner-jail-"
ABANDONED_AFTER_S = 600.0
_CONTROLLERS = ("pids", "memory")
_ENTER_THEN_EXEC = (
    'for group in "$@"; do [ "$group" = -- ] && break; echo $$ > "$group" || exit 125; shift; done; shift; exec "$@"'
)


@dataclass
class RunGroup:
    """The cgroups (one per controller) of one jailed run."""

    directories: list[Path]

    def procs_files(self) -> list[str]:
        """The `cgroup.procs` file of each group: a process writes its PID there to enter."""
        return [str(directory / "cgroup.procs") for directory in self.directories]

    def wrap(self, command: list[str]) -> list[str]:
        """`command` run from inside the groups: a shell enters them, then executes it."""
        return ["/bin/sh", "-c", _ENTER_THEN_EXEC, "jail", *self.procs_files(), "--", *command]

    def pids(self) -> set[int]:
        """Every process still in the group."""
        found: set[int] = set()
        for directory in self.directories:
            with contextlib.suppress(OSError):
                found |= {int(pid) for pid in (directory / "cgroup.procs").read_text().split()}
        return found

    def close(self, patience_s: float = 2.0) -> bool:
        """Kill what is left, remove the groups; False when a process survived `patience_s`."""
        deadline = time.monotonic() + patience_s
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
        emptied = not self.pids()
        while self.directories:  # a group is busy for a moment after its last process died
            try:
                self.directories[-1].rmdir()
                self.directories.pop()
            except FileNotFoundError:
                self.directories.pop()
            except OSError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.005)
        return emptied


def cgroup_problem() -> str | None:
    """Why per-run cgroups cannot be made here, or None."""
    for controller in _CONTROLLERS:
        parent = parent_group(controller)
        if parent is None:
            return f"no cgroup v1 '{controller}' hierarchy at {CGROUP_ROOT / controller}"
        if not os.access(parent, os.W_OK):
            return f"cannot create cgroups under {parent} (not writable)"
    return None


def open_group(memory_bytes: int, processes: int) -> RunGroup:
    """A fresh group per controller with the limits set (`OSError` where the kernel refuses)."""
    if not _swept:
        sweep_stale_groups()
    name = f"{GROUP_PREFIX}{pid_namespace()}-{os.getpid()}-{secrets.token_hex(6)}"
    group = RunGroup([])
    try:
        for controller in _CONTROLLERS:
            parent = parent_group(controller)
            if parent is None:
                raise OSError(f"no cgroup v1 '{controller}' hierarchy")
            directory = parent / name
            directory.mkdir()
            group.directories.append(directory)
        pids_dir, memory_dir = group.directories
        (pids_dir / "pids.max").write_text(str(processes))
        (memory_dir / "memory.limit_in_bytes").write_text(str(memory_bytes))
        swap_limit = memory_dir / "memory.memsw.limit_in_bytes"
        if swap_limit.exists():
            swap_limit.write_text(str(memory_bytes))
    except OSError:
        group.close()
        raise
    return group


def parent_group(controller: str) -> Path | None:
    """The group this process is in for `controller` (where run groups are made), or None."""
    mount = CGROUP_ROOT / controller
    if not (mount / "cgroup.procs").exists():
        return None
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                candidate = mount / path.lstrip("/")
                return candidate if candidate.is_dir() else mount
    return mount


def pid_namespace() -> int:
    """The inode of this process's PID namespace (0 where /proc does not say)."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def stale_groups() -> list[RunGroup]:
    """The stale run groups (see the module docstring), one `RunGroup` per name."""
    by_name: dict[str, list[Path]] = {}
    for controller in _CONTROLLERS:
        parent = parent_group(controller)
        if parent is None:
            continue
        with contextlib.suppress(OSError):
            for directory in parent.glob(f"{GROUP_PREFIX}*"):
                by_name.setdefault(directory.name, []).append(directory)
    groups = [RunGroup(directories) for directories in by_name.values()]
    return [group for group in groups if _owner_gone(group) or (not group.pids() and _age_s(group) > ABANDONED_AFTER_S)]


def sweep_stale_groups() -> int:
    """Kill what is left in stale run groups and remove them; how many were removed."""
    global _swept
    _swept = True
    return sum(group.close() for group in stale_groups())


def _owner_gone(group: RunGroup) -> bool:
    """Whether the name says the group was opened in this PID namespace by a process that is gone."""
    namespace, _, rest = group.directories[0].name.removeprefix(GROUP_PREFIX).partition("-")
    owner = rest.partition("-")[0]
    return namespace == str(pid_namespace()) and owner.isdigit() and not _alive(int(owner))


def _age_s(group: RunGroup) -> float:
    """Seconds since the youngest directory of `group` was made (0 when one cannot be read)."""
    try:
        return time.time() - max(directory.stat().st_mtime for directory in group.directories)
    except OSError:
        return 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_swept = False
