"""Grading hostile completions, and looking for what they may have left on the host."""

from __future__ import annotations

import os
import secrets
import textwrap
from pathlib import Path
from typing import Any

from evals import CodeVerdict, grade_code
from evals.cgroup_limits import CGROUP_ROOT, GROUP_PREFIX, parent_group, pid_namespace

NOTHING = object()


# Generous: an attack is expected to fail on the jail's walls, not its clock, and memory-heavy ones slow down on a
# loaded 2-core CI machine (a 450 MB write hit a 5 s limit there). Tests of the time limit pass their own.
ATTACK_TIMEOUT_S = 30.0


def attack(body: str, timeout_s: float = ATTACK_TIMEOUT_S, escaped: Any = NOTHING) -> CodeVerdict:
    """Grade `attack()` whose body attacks the host and then returns 'done'.

    The test passes only when `attack()` returns `escaped`: what the body returns when the
    forbidden read succeeded (the secret it read). Without `escaped` it expects a random token the
    completion never sees, so every pass is a forged one. Whatever the attack does, the verdict
    must be a fail, and no process of the run may be left alive. A failed comparison names what
    the attack saw (`AssertionError: seen: ...`), so tests can check the jail's own evidence.
    """
    completion = "def attack():\n    import os, sys, time\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return attack_program(completion + "\n    return 'done'\n", timeout_s, escaped)


def attack_program(completion: str, timeout_s: float = ATTACK_TIMEOUT_S, escaped: Any = NOTHING) -> CodeVerdict:
    """Grade a whole hostile module whose entry point is `attack`, as `attack` does."""
    expected = secrets.token_hex(16) if escaped is NOTHING else escaped
    test = f"def check(candidate):\n    seen = candidate()\n    assert seen == {expected!r}, f'seen: {{seen!r}}'\n"
    problem = {"prompt": "", "test": test, "entry_point": "attack"}
    # Groups a killed earlier run left behind on this machine are not this grade's.
    before = set(jail_leftovers())
    verdict = grade_code(completion, problem, timeout_s=timeout_s)
    assert not verdict.passed, verdict
    leftovers = [leftover for leftover in jail_leftovers() if leftover not in before]
    assert leftovers == [], leftovers
    return verdict


def jail_leftovers() -> list[str]:
    """Processes still in a cgroup of a jail this process opened, and such cgroups not removed (kernel
    records: unforgeable). Jails of other processes (another test worker grading at the same time) are
    not this run's."""
    own = f"{GROUP_PREFIX}{pid_namespace()}-{os.getpid()}-"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if own in (entry / "cgroup").read_text():
                    found.append(f"process {entry.name}")
            except OSError:
                continue
    for controller in ("pids", "memory"):
        parent = parent_group(controller)
        if parent is not None and parent.is_relative_to(CGROUP_ROOT):
            found += [f"cgroup {group}" for group in parent.glob(f"{own}*")]
    return found
