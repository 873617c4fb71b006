"""Attacks on code grading, run as a hostile completion would: none may pass, touch the host or linger.

Every attack goes through `attack_support.attack`, which also asserts that no process of the run
is alive after the grade. A read of the host returns what it read, and the test expects exactly
that (so a jail that let the read through fails the test), and each test also checks the jail's
own evidence in the verdict's detail: the error that refused the read, or what the attack saw.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

import pydantic
import pytest
from attack_support import attack, attack_program

SECRET_NAME = "REASONER_TEST_FAKE_SECRET"
SECRET_VALUE = "s3cr3t-" + secrets.token_hex(8)

# ---- forging the verdict from inside the candidate's process ----

FORGERIES = {
    "walk the stack to the reply function": """
        frame = sys._getframe()
        while frame is not None:
            for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
                if callable(value) and getattr(value, "__name__", "") == "send":
                    value({"status": "passed", "detail": ""})
            frame = frame.f_back
        os._exit(0)
    """,
    "scan gc for the channel and write a forged report": """
        import gc, json
        forged = json.dumps({"status": "passed", "detail": ""}).encode() + b"\\n"
        for obj in gc.get_objects():
            if hasattr(obj, "fileno") and hasattr(obj, "write"):
                try:
                    obj.write(forged)
                    obj.flush()
                except Exception:
                    pass
        os._exit(0)
    """,
    "write a passed verdict to every descriptor": """
        for fd in range(1024):
            try:
                os.write(fd, b'{"status": "passed", "detail": ""}\\n{"value": "done"}\\n')
            except OSError:
                pass
    """,
    "return an object equal to everything": """
        class Anything:
            def __eq__(self, other):
                return True
        return Anything()
    """,
    "return an int subclass equal to everything": """
        class Slippery(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        return Slippery(1)
    """,
    "return a str subclass equal to everything": """
        class Slippery(str):
            def __eq__(self, other):
                return True
            __hash__ = str.__hash__
        return Slippery("done")
    """,
    "replace AssertionError in builtins": """
        import builtins
        builtins.AssertionError = type("AssertionError", (Exception,), {})
    """,
    "read the expected answer from other processes": """
        for pid in os.listdir("/proc"):
            for part in ("cmdline", "environ"):
                try:
                    text = open(f"/proc/{pid}/{part}", "rb").read().decode(errors="replace")
                except OSError:
                    continue
                for word in text.replace("'", " ").replace('"', " ").split():
                    if len(word) == 32:
                        return word
    """,
    "answer a garbage line on the protocol": """
        os.write(1, b"\\xff\\xfe not json\\n")
        os.write(os.dup(1), b"{]\\n")
    """,
}


@pytest.mark.parametrize("kind", list(FORGERIES))
def test_a_forged_verdict_is_never_a_pass(kind: str) -> None:
    attack(FORGERIES[kind])


def test_redefining_check_in_the_completion_changes_nothing() -> None:
    attack_program("def check(candidate):\n    pass\n\ndef attack():\n    return 'done'\n")


@pytest.mark.parametrize(
    "leave", ["os._exit(0)", "sys.exit(0)", "exit()", "raise SystemExit", "raise KeyboardInterrupt"]
)
def test_leaving_early_is_never_a_pass(leave: str) -> None:
    verdict = attack(leave)
    assert verdict.status in ("crashed", "error")


# ---- escapes: other programs, other processes ----


@pytest.mark.parametrize(
    "spawn",
    [
        "os.system('cat /etc/passwd > {out}')",
        "import subprocess\nsubprocess.run(['/bin/sh', '-c', 'cat /etc/passwd > {out}'])",
        "import _posixsubprocess\nif os.fork() == 0:\n    os.execv('/bin/sh', ['sh', '-c', 'id > {out}'])",
        "os.posix_spawn('/usr/bin/env', ['env', 'sh', '-c', 'id > {out}'], {{}})",
    ],
)
def test_no_shell_or_host_program_can_run(spawn: str, tmp_path: Path) -> None:
    out = tmp_path / "escaped.txt"
    attack(spawn.format(out=out))
    assert not out.exists()


def test_a_detached_process_does_not_outlive_the_grade() -> None:
    attack("""
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                import signal
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                time.sleep(300)
            os._exit(0)
        time.sleep(0.2)
    """)


def test_a_fork_bomb_is_capped_and_cleaned_up() -> None:
    started = time.monotonic()
    verdict = attack("while True:\n    os.fork()", timeout_s=20.0)
    assert (verdict.status, verdict.detail) == ("error", "BlockingIOError: [Errno 11] Resource temporarily unavailable")
    assert time.monotonic() - started < 60  # capped and cleaned up, not left to run


@pytest.mark.parametrize(
    "kill",
    [
        "import signal\nos.kill(os.getppid(), signal.SIGKILL)",
        "import signal\nos.kill(-1, signal.SIGKILL)",
        "import signal\nfor pid in range(1, 4096):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError:\n        pass",
    ],
)
def test_killing_other_processes_reaches_nothing_outside(kill: str) -> None:
    attack(kill)
    os.kill(os.getpid(), 0)


# ---- reading the host ----


def test_the_grader_environment_is_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)
    verdict = attack(
        f"""
        found = [os.environ.get({SECRET_NAME!r}, "")]
        for pid in os.listdir("/proc"):
            try:
                found.append(open(f"/proc/{{pid}}/environ", "rb").read().decode(errors="replace"))
            except OSError:
                pass
        if any({SECRET_VALUE!r} in text for text in found):
            return {SECRET_VALUE!r}
        return sorted(os.environ)
    """,
        escaped=SECRET_VALUE,
    )
    # The jail's evidence: its environment holds only what bwrap sets.
    assert verdict.detail == "AssertionError: seen: ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']"


def _host_reads(tmp_path: Path) -> dict[str, tuple[str, object, str]]:
    """Reads of the host: (attack body returning what it read, what a successful read returns, the jail's evidence)."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_VALUE)
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    top = "etc"  # on every host, never in the jail (the repository's own top folder may be /tmp, which the jail has)
    not_found = "FileNotFoundError: [Errno 2] No such file or directory"
    return {
        "/etc/passwd": ("return open('/etc/passwd').read()", Path("/etc/passwd").read_text(), not_found),
        "a file the test wrote": (f"return open({str(secret)!r}).read()", SECRET_VALUE, not_found),
        "this test file": (f"return open({__file__!r}).read()", Path(__file__).read_text(), not_found),
        "the host's root folder": (
            f"return {top!r} in os.listdir('/')",
            True,
            "AssertionError: seen: False",
        ),
        "the host root through /proc/1/root": (
            f"return sorted(os.listdir('/proc/1/root/{top}'))",
            sorted(os.listdir(f"/{top}")),
            not_found,
        ),
        "the home folder": (
            f"return sorted(os.listdir({str(Path.home())!r}))",
            sorted(os.listdir(Path.home())),
            "AssertionError: seen: ['.pyenv']" if Path.home() == Path("/root") else not_found,
        ),
        "the cgroup tree": (
            "return sorted(os.listdir('/sys/fs/cgroup'))",
            sorted(os.listdir("/sys/fs/cgroup")),
            not_found,
        ),
        "an installed package": ("import pydantic\nreturn pydantic.VERSION", pydantic.VERSION, "ModuleNotFoundError"),
        "site-packages by path": (
            f"sys.path.append({site_packages!r})\nimport pydantic\nreturn pydantic.VERSION",
            pydantic.VERSION,
            "ModuleNotFoundError",
        ),
    }


@pytest.mark.parametrize(
    "read",
    [
        "/etc/passwd",
        "a file the test wrote",
        "this test file",
        "the host's root folder",
        "the host root through /proc/1/root",
        "the home folder",
        "the cgroup tree",
        "an installed package",
        "site-packages by path",
    ],
)
def test_host_files_and_folders_cannot_be_read(read: str, tmp_path: Path) -> None:
    body, escaped, evidence = _host_reads(tmp_path)[read]
    verdict = attack(body, escaped=escaped)
    assert verdict.detail.startswith(evidence), verdict


# ---- writing to the host ----


@pytest.mark.parametrize(
    "write",
    [
        "open({outside!r}, 'w').write('x')",
        "open({host_tmp!r}, 'w').write('x')",
        "import sqlite3\nsqlite3.connect({host_tmp!r}).execute('create table t (x)')",
        "import sqlite3\nsqlite3.connect({outside!r}).execute('create table t (x)')",
        "os.symlink({folder!r}, '/tmp/link')\nopen('/tmp/link/escaped.txt', 'w').write('x')",
        "open('/grader/answerer.py', 'w').write('x')",
        "open('/dev/shm/escaped', 'w').write('x')",
        "open({repository_file!r}, 'a').write('x')",
    ],
)
def test_nothing_is_written_on_the_host(write: str, tmp_path: Path) -> None:
    outside = tmp_path / "escaped.txt"
    host_tmp = Path("/tmp") / f"reasoner-escape-{secrets.token_hex(8)}"
    repository_file = Path(__file__).with_name("escape-marker.txt")
    attack(
        write.format(
            outside=str(outside), host_tmp=str(host_tmp), folder=str(tmp_path), repository_file=str(repository_file)
        )
    )
    assert not outside.exists()
    assert not host_tmp.exists()
    assert not repository_file.exists()
    assert not (tmp_path / "escaped").exists()


def test_one_big_file_stops_at_the_file_size_limit() -> None:
    verdict = attack("open('/tmp/flood', 'wb').write(b'x' * (450 << 20))")
    assert (verdict.status, verdict.detail) == ("error", "OSError: [Errno 27] File too large")


def test_a_write_flood_stops_at_the_private_tmpfs_cap() -> None:
    verdict = attack("""
        for index in range(45):
            open(f"/tmp/flood-{index}", "wb").write(b"x" * (10 << 20))
    """)
    assert (verdict.status, verdict.detail) == ("error", "OSError: [Errno 28] No space left on device")


# ---- resources ----


def test_an_infinite_loop_is_stopped_at_the_time_limit() -> None:
    started = time.monotonic()
    verdict = attack("while True:\n    pass", timeout_s=1.0)
    assert verdict.status == "timeout"
    assert time.monotonic() - started < 30  # stopped at the limit: unenforced, the loop never ends


def test_busy_threads_are_stopped_at_the_time_limit() -> None:
    verdict = attack(
        "import threading\nfor _ in range(4):\n    threading.Thread(target=lambda: [0 for _ in iter(int, 1)]).start()\n"
        "time.sleep(60)",
        timeout_s=1.0,
    )
    assert verdict.status == "timeout"


def test_an_output_flood_goes_nowhere() -> None:
    verdict = attack("while True:\n    print('x' * 4096)", timeout_s=1.0)
    assert verdict.status == "timeout"


def test_a_huge_allocation_fails_inside_the_jail() -> None:
    verdict = attack("hoard = bytearray(64 * 2**30)")
    assert (verdict.status, verdict.detail) == ("error", "MemoryError")


def test_memory_spread_over_processes_is_capped_by_the_run_group() -> None:
    verdict = attack(
        """
        children = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                hoard = b"x" * (400 << 20)
                time.sleep(0.5)
                os._exit(0)
            children.append(pid)
        ends = [os.waitpid(pid, 0)[1] for pid in children]
        if any(os.WIFSIGNALED(end) for end in ends):
            raise MemoryError("a child was killed")
    """,
        # Reclaim at the group's limit is slow on a loaded machine: 4-5 s here beside six busy
        # loops, over 10 s on CI beside two engines, over 40 s on a slower 2-core machine beside three.
        timeout_s=120.0,
    )
    assert (verdict.status, verdict.detail) == ("error", "MemoryError: a child was killed")


# ---- the network ----


def test_a_host_listener_is_unreachable() -> None:
    answered: list[bool] = []
    done = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        answering = threading.Thread(target=_send_secret_to_callers, args=(listener, done, answered), daemon=True)
        answering.start()
        verdict = attack(
            f"import socket\nreturn socket.create_connection(('127.0.0.1', {port}), timeout=1).recv(64).decode()",
            escaped=SECRET_VALUE,
        )
        done.set()
        answering.join()
    assert verdict.detail == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert answered == []


def _send_secret_to_callers(listener: socket.socket, done: threading.Event, answered: list[bool]) -> None:
    """Until `done`, send the secret to every connection (none should come)."""
    while not done.is_set():
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            done.wait(0.02)
            continue
        with connection:
            connection.sendall(SECRET_VALUE.encode())
        answered.append(True)


def test_an_abstract_unix_socket_of_the_host_is_unreachable() -> None:
    name = f"\0reasoner-test-{secrets.token_hex(8)}"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(name)
        listener.listen()
        listener.setblocking(False)
        verdict = attack(
            f"import socket\nsocket.socket(socket.AF_UNIX).connect({name!r})\nreturn 'connected'", escaped="connected"
        )
        assert verdict.detail == "ConnectionRefusedError: [Errno 111] Connection refused"
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_the_internet_is_unreachable() -> None:
    verdict = attack(
        "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)\nreturn 'connected'", escaped="connected"
    )
    assert verdict.detail == "OSError: [Errno 101] Network is unreachable"
