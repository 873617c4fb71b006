"""`reasoner report --plot`: the three formats from one records file, and a user's files left alone."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from evals.records import HEADER
from reasoner.output_files import is_ours
from tests.cli.cli_support import run_cli
from tests.evals.test_plots import BUDGETS, STRATEGIES, expected_points, records


@pytest.fixture
def records_file(tmp_path: Path) -> Path:
    path = tmp_path / "records.jsonl"
    lines = [HEADER, *records(("arith",))]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize("extension", ["png", "svg", "html"])
def test_report_writes_the_plot_in_the_format_its_name_asks_for(
    capsys: pytest.CaptureFixture[str], records_file: Path, tmp_path: Path, extension: str
) -> None:
    out = tmp_path / f"plot.{extension}"
    code, stdout, stderr = run_cli(capsys, "report", str(records_file), "--plot", str(out), "--format", "csv")
    assert code == 0, stderr
    assert stderr == f"wrote the plot to {out}\n"
    assert stdout.count("\n") == 1 + len(STRATEGIES) * len(BUDGETS)  # the report itself is still printed
    content = out.read_bytes()
    assert is_ours(content[:4096])
    if extension == "png":
        assert content.startswith(b"\x89PNG")
        return
    svg = content.decode()[content.decode().index("<svg") : content.decode().index("</svg>") + 6]
    root = ElementTree.fromstring(svg)
    texts = {"".join(node.itertext()).strip() for node in root.iter("{http://www.w3.org/2000/svg}text")}
    assert set(STRATEGIES) <= texts
    ids = {group.get("id") for group in root.iter("{http://www.w3.org/2000/svg}g")}
    assert {f"series-0-0-{index}" for index in range(len(STRATEGIES))} <= ids
    if extension == "html":
        xs, ys, _, _ = expected_points("arith", 0)
        assert all(f"<td>{100 * y:.1f}%</td>" in content.decode() for y in ys)
        assert all(f"<td>{x:.1f}</td>" in content.decode() for x in xs)


def test_report_replaces_a_plot_it_wrote(
    capsys: pytest.CaptureFixture[str], records_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plot.svg"
    assert run_cli(capsys, "report", str(records_file), "--plot", str(out))[0] == 0
    out.write_bytes(out.read_bytes().replace(b"arith", b"older"))
    assert run_cli(capsys, "report", str(records_file), "--plot", str(out))[0] == 0
    assert b"older" not in out.read_bytes() and b"arith" in out.read_bytes()


@pytest.mark.parametrize(
    "content",
    [
        b"my notes\n",
        b"<!DOCTYPE html>\n<p>my page</p>\n",
        b'<?xml version="1.0" encoding="utf-8" standalone="no"?>\n<svg/>\n',
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    ],
)
@pytest.mark.parametrize("extension", ["png", "svg", "html"])
def test_report_refuses_to_replace_a_users_file_and_leaves_it_byte_identical(
    capsys: pytest.CaptureFixture[str], records_file: Path, tmp_path: Path, content: bytes, extension: str
) -> None:
    out = tmp_path / f"mine.{extension}"
    out.write_bytes(content)
    code, stdout, stderr = run_cli(capsys, "report", str(records_file), "--plot", str(out))
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "did not write; it was left unchanged" in stderr
    assert out.read_bytes() == content


def test_report_refuses_a_folder_or_a_fifo_as_the_plot_without_hanging(
    capsys: pytest.CaptureFixture[str], records_file: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "plot.png"
    folder.mkdir()
    fifo = tmp_path / "pipe.svg"
    os.mkfifo(fifo)
    for path in (folder, fifo):
        code, _, stderr = run_cli(capsys, "report", str(records_file), "--plot", str(path))
        assert code == 2 and "is not a regular file" in stderr and stderr.count("\n") == 1


@pytest.mark.parametrize("name", ["plot.pdf", "plot", "plot.jpeg"])
def test_report_refuses_a_plot_name_of_no_known_format(
    capsys: pytest.CaptureFixture[str], records_file: Path, tmp_path: Path, name: str
) -> None:
    code, stdout, stderr = run_cli(capsys, "report", str(records_file), "--plot", str(tmp_path / name))
    assert (code, stdout) == (2, "")
    assert stderr.count("\n") == 1 and ".png, .svg or .html" in stderr
    assert not (tmp_path / name).exists()


def test_report_refuses_a_plot_in_a_missing_folder(
    capsys: pytest.CaptureFixture[str], records_file: Path, tmp_path: Path
) -> None:
    code, _, stderr = run_cli(capsys, "report", str(records_file), "--plot", str(tmp_path / "no" / "plot.png"))
    assert code == 2 and "is not a writable folder" in stderr
