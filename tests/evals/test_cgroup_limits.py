from __future__ import annotations

import subprocess

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
