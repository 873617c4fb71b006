"""`reasoner solve` with a named set of models: bad sets and unknown names exit 2 in one line, before any model work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_support import run_cli


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ["--model", "a=x", "--model", "b=y", "--run-on", "huge"],
            "unknown model 'huge' in --run-on; the models are a, b",
        ),
        (["--run-on", "a"], "--run-on names one of several models"),
        (["--model", "a=x", "--model", "a=y"], "model name 'a' is given twice"),
        (["--model", "a=x", "--endpoint", "http://127.0.0.1:9/v1"], "--endpoint runs one model"),
        (["--model", "a b=x"], "model name 'a b' is not usable"),
    ],
)
def test_a_bad_model_set_exits_2_in_one_line_before_any_model_work(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], fragment: str
) -> None:
    monkeypatch.setenv("REASONER_HOME", str(tmp_path))
    code, out, err = run_cli(capsys, "solve", "What is 2 + 3?", *argv)
    assert code == 2 and out == ""
    assert fragment in err and err.count("\n") == 1
    assert not (tmp_path / "models").exists()
