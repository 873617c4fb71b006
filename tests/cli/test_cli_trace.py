"""`reasoner trace` and `reasoner solve --trace-html`: the page from a solve's JSON, and hostile input refused."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from reasoner import Reasoner
from reasoner.testing import ScriptedBackend
from tests.cli.cli_support import run_cli
from tests.lent_engine import Lent
from tests.reasoner.trace_solves import scripted_solve

DATA = re.compile(r'<script type="application/json" id="trace-data">(.*?)</script>', re.S)


def page_nodes(path: Path) -> list[dict[str, object]]:
    nodes: list[dict[str, object]] = json.loads(DATA.findall(path.read_text())[0])["nodes"]
    return nodes


@pytest.fixture
def solution_file(tmp_path: Path) -> Path:
    path = tmp_path / "solution.json"
    path.write_text(scripted_solve("tree_search").model_dump_json())
    return path


def test_trace_writes_the_page_of_a_solutions_json(
    capsys: pytest.CaptureFixture[str], solution_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "trace.html"
    code, stdout, stderr = run_cli(capsys, "trace", str(solution_file), "-o", str(out))
    assert (code, stderr) == (0, "")
    segments = json.loads(solution_file.read_text())["trace"]["nodes"]
    assert stdout == f"wrote the trace ({len(segments)} segments) to {out}\n"
    assert [node["text"] for node in page_nodes(out)] == [segment["text"] for segment in segments]
    again = run_cli(capsys, "trace", str(solution_file), "-o", str(out))  # our own page is replaced
    assert again[0] == 0


def test_solve_writes_the_trace_page_it_solved(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lent = Lent(Reasoner(backend=ScriptedBackend("Thinking. Final answer: 4"), profile="smollm2"))
    monkeypatch.setattr("reasoner.Reasoner", lent)
    out = tmp_path / "solve.html"
    code, stdout, _ = run_cli(capsys, "solve", "2 + 2?", "--json", "--trace-html", str(out))
    assert code == 0
    solved = json.loads(stdout)
    assert [node["text"] for node in page_nodes(out)] == [node["text"] for node in solved["trace"]["nodes"]]


def test_solve_refuses_a_users_file_as_the_trace_page_before_solving(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lent = Lent(Reasoner(backend=ScriptedBackend("Final answer: 4"), profile="smollm2"))
    monkeypatch.setattr("reasoner.Reasoner", lent)
    mine = tmp_path / "notes.html"
    mine.write_text("<p>mine</p>")
    code, _, stderr = run_cli(capsys, "solve", "2 + 2?", "--trace-html", str(mine))
    assert code == 2 and stderr.count("\n") == 1 and "did not write" in stderr
    assert lent.calls == [] and mine.read_text() == "<p>mine</p>"


def test_trace_refuses_to_replace_a_users_file(
    capsys: pytest.CaptureFixture[str], solution_file: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "index.html"
    mine.write_text("<!DOCTYPE html>\n<p>my page</p>\n")
    code, stdout, stderr = run_cli(capsys, "trace", str(solution_file), "-o", str(mine))
    assert (code, stdout) == (2, "") and stderr.count("\n") == 1
    assert mine.read_text() == "<!DOCTYPE html>\n<p>my page</p>\n"


def hostile_solutions(valid: dict[str, object]) -> dict[str, bytes]:
    def with_trace(trace: object) -> bytes:
        return json.dumps({**valid, "trace": trace}).encode()

    return {
        "not JSON": b"\x00\xffnot json",
        "a list": b"[1, 2, 3]",
        "no fields": b"{}",
        "deep nesting": b"[" * 200_000 + b"]" * 200_000,
        "trace of the wrong type": with_trace("graph"),
        "a cycle": with_trace(
            {
                "directed": True,
                "nodes": [{"id": 0}, {"id": 1}],
                "edges": [{"source": 0, "target": 1}, {"source": 1, "target": 0}],
            }
        ),
        "unhashable ids": with_trace({"directed": True, "nodes": [{"id": {"a": 1}}], "edges": []}),
        "edges without ends": with_trace({"directed": True, "nodes": [], "edges": [{"kind": "x"}]}),
        "no nodes key": with_trace({"directed": True, "edges": []}),
    }


def test_trace_refuses_hostile_solution_files_with_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], solution_file: Path, tmp_path: Path
) -> None:
    valid = json.loads(solution_file.read_text())
    for name, content in hostile_solutions(valid).items():
        source = tmp_path / "hostile.json"
        source.write_bytes(content)
        out = tmp_path / "out.html"
        code, stdout, stderr = run_cli(capsys, "trace", str(source), "-o", str(out))
        assert (code, stdout) == (2, ""), name
        assert stderr.count("\n") == 1 and "Traceback" not in stderr and len(stderr) < 600, (name, stderr)
        assert not out.exists(), name


def test_trace_refuses_a_missing_file_a_folder_and_a_fifo_without_hanging(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for source, message in (
        (tmp_path / "none.json", "No such file"),
        (tmp_path, "not a regular file"),
        (fifo, "not a regular file"),
    ):
        code, _, stderr = run_cli(capsys, "trace", str(source), "-o", str(tmp_path / "out.html"))
        assert code == 2 and message in stderr and stderr.count("\n") == 1
