from __future__ import annotations

import os
import secrets
import subprocess
import time

from evals import cgroup_limits
from evals.cgroup_limits import cgroup_problem, open_group
from evals.jail import interpreter


def test_a_run_group_caps_processes_and_is_removed_with_everything_in_it() -> None:
    assert cgroup_problem() is None
    group = open_group(256 << 20, processes=4)
    script = (
        "import os, time\nfor _ in range(10):\n    try:\n        os.fork() or time.sleep(60)\n"
        "    except OSError:\n        print('capped', flush=True)\n        break\ntime.sleep(60)"
    )
    child = subprocess.Popen(group.wrap([interpreter(), "-c", script]), stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "capped"
    assert 1 <= len(group.pids()) <= 4
    assert group.close()
    assert child.wait(timeout=5) < 0
    assert not any(directory.exists() for directory in group.directories)


def _group_named(name: str) -> cgroup_limits.RunGroup:
    directories = []
    for controller in ("pids", "memory"):
        parent = cgroup_limits.parent_group(controller)
        assert parent is not None
        directory = parent / name
        directory.mkdir()
        directories.append(directory)
    return cgroup_limits.RunGroup(directories)


def _dead_pid() -> int:
    probe = subprocess.Popen(["true"])
    probe.wait()
    return probe.pid


def test_groups_left_by_killed_graders_are_swept_with_what_runs_in_them() -> None:
    assert cgroup_problem() is None
    namespace = cgroup_limits.pid_namespace()
    stale = _group_named(f"{cgroup_limits.GROUP_PREFIX}{namespace}-{_dead_pid()}-{secrets.token_hex(6)}")
    orphan = subprocess.Popen(stale.wrap(["sleep", "60"]))
    kept = [
        _group_named(f"{cgroup_limits.GROUP_PREFIX}{namespace}-{os.getpid()}-{secrets.token_hex(6)}"),
        _group_named(f"{cgroup_limits.GROUP_PREFIX}{namespace + 1}-{_dead_pid()}-{secrets.token_hex(6)}"),
        _group_named(f"{cgroup_limits.GROUP_PREFIX}{secrets.token_hex(8)}"),
    ]
    abandoned = _group_named(f"{cgroup_limits.GROUP_PREFIX}{secrets.token_hex(8)}")
    old = time.time() - cgroup_limits.ABANDONED_AFTER_S - 60
    for directory in abandoned.directories:
        os.utime(directory, (old, old))
    try:
        deadline = time.monotonic() + 5
        while not stale.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stale.pids() == {orphan.pid}
        assert cgroup_limits.sweep_stale_groups() >= 2
        assert orphan.wait(timeout=5) < 0
        assert not any(directory.exists() for group in (stale, abandoned) for directory in group.directories)
        assert all(directory.exists() for group in kept for directory in group.directories)
    finally:
        orphan.kill()
        for group in [stale, abandoned, *kept]:
            group.close()


def test_opening_a_group_names_its_owner_so_a_later_sweep_can_tell() -> None:
    group = open_group(64 << 20, processes=4)
    try:
        assert all(
            directory.name.startswith(f"{cgroup_limits.GROUP_PREFIX}{cgroup_limits.pid_namespace()}-{os.getpid()}-")
            for directory in group.directories
        )
        assert group.directories[0] not in [d for g in cgroup_limits.stale_groups() for d in g.directories]
    finally:
        assert group.close()
