"""The synchronous portal: Ctrl-C cancels the solve it waits for, whichever thread the kernel hands SIGINT to."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.terminal import from_a_terminal

REPO = Path(__file__).resolve().parents[2]

# SIGINT is sent to one thread of the process that is not the waiting main thread: the kernel does that with a
# process-wide signal when the main thread has it blocked or pending. The signal module's C handler then runs
# on that thread; the main thread must still raise KeyboardInterrupt and cancel the coroutine, long before the
# coroutine's 20 s are up.
SCRIPT = """
import asyncio, signal, threading, time
from reasoner.runtime import LoopThread

portal = LoopThread()
bystander = threading.Thread(target=time.sleep, args=(30,), daemon=True)
bystander.start()
threading.Timer(0.5, signal.pthread_kill, (bystander.ident, signal.SIGINT)).start()

async def solve():
    try:
        await asyncio.sleep(20)
    except asyncio.CancelledError:
        print("CANCELLED", flush=True)
        raise

started = time.monotonic()
try:
    portal.run(solve())
    print("FINISHED", flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED", time.monotonic() - started, flush=True)
time.sleep(0.5)
"""


def test_sigint_handled_on_another_thread_still_interrupts_the_wait_and_cancels_the_coroutine() -> None:
    environment = {"PYTHONPATH": str(REPO)}
    done = subprocess.run(
        from_a_terminal("-c", SCRIPT), capture_output=True, text=True, timeout=60, cwd=REPO, env=environment
    )
    lines = done.stdout.split()
    assert "CANCELLED" in lines and "INTERRUPTED" in lines, done.stdout + done.stderr
    assert float(lines[lines.index("INTERRUPTED") + 1]) < 10.0  # the wait ended on the signal, not on the 20 s sleep
