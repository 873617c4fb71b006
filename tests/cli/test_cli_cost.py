"""`reasoner solve --cost-budget / --accelerator`: bad values exit 2 with one line, before any model work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_support import run_cli_process


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cost-budget", "0"], "invalid budget cost=0.0"),
        (["--cost-budget=-3e12"], "invalid budget cost=-3000000000000.0"),
        (["--cost-budget", "nan"], "invalid budget cost=nan"),
        (["--cost-budget", "inf"], "invalid budget cost=inf"),
        (["--cost-budget", "lots"], "invalid float value: 'lots'"),
        (["--accelerator", "tpu-v9"], "unknown accelerator 'tpu-v9'; known: H200, H100"),
    ],
    ids=["zero", "negative", "nan", "inf", "not-a-number", "unknown-accelerator"],
)
def test_bad_cost_flags_exit_2_with_one_line_before_the_model_is_provisioned(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    result = run_cli_process("solve", "What is 2 + 3?", *flags, reasoner_home=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "models").exists()
