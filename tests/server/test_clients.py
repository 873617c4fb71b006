"""Real clients against the real `reasoner serve` (the shared `served` fixture, forced lengths).

The official `openai` client streams live thinking, and lm-evaluation-harness runs the README's own
command lines, read from the README, changed only in where the server is, its key and the task
(a four-problem local task in `tests/server/lm_eval_task`: the hub is unreachable in tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.server.serve_process import REPO_ROOT, SERVE_API_KEY, RunningServer

pytestmark = pytest.mark.engine

README = REPO_ROOT / "README.md"
LM_EVAL_TIMEOUT_S = 600
# What the README's lm-eval commands name for a user's machine, and what the tests use instead.
README_SERVER = "http://127.0.0.1:8000"
README_KEY = "OPENAI_API_KEY=none"
README_TASK = "--include_path ./my_tasks --tasks gsm8k_local"
TEST_TASK = "--include_path tests/server/lm_eval_task --tasks reasoner_arith"


def readme_lm_eval_commands() -> dict[str, str]:
    """The README's lm-eval command lines by model type (`local-completions`, `local-chat-completions`)."""
    lines = README.read_text().split("### lm-evaluation-harness against `reasoner serve`", 1)[1].splitlines()
    commands: dict[str, str] = {}
    current: list[str] = []
    for line in lines:
        if line.startswith(README_KEY) or current:
            current.append(line.rstrip("\\").strip())
            if not line.endswith("\\"):
                command = " ".join(current)
                commands[command.split("--model ", 1)[1].split()[0]] = command
                current = []
        if line.startswith("## "):
            break
    return commands


def for_the_test_server(command: str, server: RunningServer) -> str:
    for readme, test in ((README_SERVER, server.base_url), (README_KEY, f"OPENAI_API_KEY={SERVE_API_KEY}")):
        assert command.count(readme) == 1, f"the README's lm-eval command no longer holds {readme!r}: {command}"
        command = command.replace(readme, test)
    assert command.count(README_TASK) == 1, f"the README's lm-eval command no longer names {README_TASK!r}"
    return command.replace(README_TASK, TEST_TASK)


def start_shell(command: str, cache: Path) -> subprocess.Popen[str]:
    """`command` in bash from the repository root, with this venv's `lm_eval` first on PATH."""
    env = os.environ | {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "HF_DATASETS_CACHE": str(cache),
    }
    return subprocess.Popen(
        ["bash", "-c", command], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_the_readmes_lm_eval_commands_run_as_written_and_a_greedy_self_consistency_is_refused(
    served: RunningServer, tmp_path: Path
) -> None:
    commands = readme_lm_eval_commands()
    assert set(commands) == {"local-completions", "local-chat-completions"}
    runs = {name: for_the_test_server(command, served) for name, command in commands.items()}
    completions = runs["local-completions"]
    assert completions.count("model=direct@") == 1
    # lm-eval sends temperature 0 with every request: self_consistency must say so, not vote over copies.
    runs["self_consistency"] = completions.replace("model=direct@", "model=self_consistency@")
    # The three start at once: most of an lm-eval run is its own import.
    processes = {name: start_shell(command, tmp_path / name) for name, command in runs.items()}
    results = {name: process.communicate(timeout=LM_EVAL_TIMEOUT_S) for name, process in processes.items()}
    for name in commands:
        out, err = results[name]
        assert processes[name].returncode == 0, f"{name}: {err[-3000:]}"
        assert "|reasoner_arith|" in out and "exact_match" in out, out
    out, err = results["self_consistency"]
    assert processes["self_consistency"].returncode != 0
    assert "temperature 0 would make every sample of self_consistency" in err, err[-3000:]
    assert "--gen_kwargs temperature=0.7" in err


def test_streamed_elastic_sends_its_thinking_live_then_its_answer_adding_up_to_the_message(
    served: RunningServer,
) -> None:
    client = openai.OpenAI(api_key=SERVE_API_KEY, base_url=served.api_url, max_retries=0, timeout=300)
    question = [{"role": "user", "content": "What is 17 * 23?"}]
    pieces: list[tuple[str, str]] = []
    stream = client.chat.completions.create(model="elastic@96", messages=question, stream=True)  # type: ignore[arg-type]
    for chunk in stream:
        assert chunk.model == "elastic@96"
        delta = chunk.choices[0].delta
        if reasoning := getattr(delta, "reasoning_content", None):
            pieces.append(("reasoning", reasoning))
        if delta.content:
            pieces.append(("content", delta.content))
    message = client.chat.completions.create(model="elastic@96", messages=question).choices[0].message  # type: ignore[arg-type]
    kinds = [kind for kind, _ in pieces]
    assert kinds.count("reasoning") > 1 and kinds.count("content") > 1, "thinking and answer stream token by token"
    assert kinds == sorted(kinds, key=lambda kind: kind == "content"), "all of the thinking comes before the answer"
    assert "".join(text for kind, text in pieces if kind == "reasoning") == message.reasoning_content  # type: ignore[attr-defined]
    assert "".join(text for kind, text in pieces if kind == "content") == message.content
