"""Saturation points fitted to synthetic records whose answer is computed by hand."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cli import calibrate_command
from cli.calibrate_command import saturation_caps
from cli.main import main
from controllers.allocation import allocate
from controllers.calibration import Calibration
from controllers.policy import BINS, Choice, Policy, config_label, load_policy
from evals.report import build_report, render_csv, render_json, render_markdown, render_rich, strategy_label
from evals.saturation import (
    DEFAULT_MIN_GAIN_PER_1K_TOKENS,
    SaturationError,
    fit,
    saturation_point,
    saturation_points,
    saturation_units,
)

# F(k) = 0.8 * (1 - 0.5 ** k) with one unit = 100 tokens, at k = 1, 2, 4, 8, over 320 problems:
# 128, 192, 240 and 255 correct.
FLATTENING = {100: 128, 200: 192, 400: 240, 800: 255}
PROBLEMS = 320


def records(
    correct_per_budget: dict[int, int], problems: int = PROBLEMS, strategy: str = "direct", cost_per_token: float = 0.0
) -> list[dict[str, Any]]:
    made = []
    for budget, solved in correct_per_budget.items():
        for index in range(problems):
            usage: dict[str, Any] = {"generated_tokens": budget}
            if cost_per_token:
                usage["cost"] = cost_per_token * budget
            made.append(
                {
                    "key": f"s|{index}|{strategy}|{budget}",
                    "suite": "s",
                    "problem_id": str(index),
                    "strategy": strategy,
                    "budget": budget,
                    "options": {},
                    "correct": index < solved,
                    "usage": usage,
                    "latency_s": 0.1,
                }
            )
    return made


def test_the_fit_recovers_the_ceiling_and_success_probability() -> None:
    model = fit(list(FLATTENING), [solved / PROBLEMS for solved in FLATTENING.values()])
    assert model.unit_budget == 100
    assert model.p == pytest.approx(0.5, abs=1e-6)
    assert model.ceiling == pytest.approx(0.8, abs=1e-6)
    assert model.accuracy(300) == pytest.approx(0.8 * (1 - 0.5**3), abs=1e-6)


def test_a_flattening_strategy_saturates_where_the_gain_per_token_falls_below_the_threshold() -> None:
    # Gain of unit k+1 per token: 0.8 * 0.5 * 0.5**k / 100 < 0.1 / 1000  <=>  0.5**k < 0.025  <=>  k > 5.32.
    point = saturation_point("s", "direct", records(FLATTENING), min_gain_per_1k_tokens=0.1)
    assert (point.status, point.budget) == ("saturated", 600)
    assert saturation_units(fit(list(FLATTENING), [v / PROBLEMS for v in FLATTENING.values()]), 0.1) == 6


def test_a_strategy_still_rising_has_no_saturation_point_within_its_budgets() -> None:
    # Default threshold 0.01 per 1k tokens: 0.5**k < 0.0025  <=>  k > 8.64, so k* = 9: 900 > 800 tokens.
    point = saturation_point("s", "direct", records(FLATTENING))
    assert (point.status, point.budget, point.extrapolated_budget) == ("rising", None, 900)
    assert "still rising at 800 tokens" in point.reason


def test_the_cost_at_the_saturation_point_is_interpolated_between_budgets() -> None:
    point = saturation_point("s", "direct", records(FLATTENING, cost_per_token=2.0), min_gain_per_1k_tokens=0.1)
    assert point.cost == pytest.approx(1200.0)
    assert saturation_point("s", "direct", records(FLATTENING), min_gain_per_1k_tokens=0.1).cost is None


def test_one_budget_cannot_be_fitted_and_says_so() -> None:
    point = saturation_point("s", "direct", records({100: 3}, problems=5))
    assert point.status == "unfit"
    assert "cannot fit a saturation point from one budget (100)" in point.reason
    with pytest.raises(SaturationError, match="measure two or more budgets"):
        fit([100, 100], [0.5, 0.5])


@pytest.mark.parametrize(
    ("solved", "problems"),
    [({64: 0, 256: 0, 1024: 0}, 10), ({64: 10, 256: 10, 1024: 10}, 10), ({64: 1, 256: 1}, 1), ({64: 1, 256: 0}, 1)],
    ids=["all-wrong", "all-right", "one-problem", "falling"],
)
def test_records_where_compute_never_pays_saturate_at_the_smallest_budget(
    solved: dict[int, int], problems: int
) -> None:
    point = saturation_point("s", "direct", records(solved, problems=problems))
    assert (point.status, point.budget) == ("saturated", 64)
    assert point.reason == "accuracy never rises above the smallest budget's"
    assert point.p is not None and point.ceiling is not None
    assert math.isfinite(point.p) and math.isfinite(point.ceiling)


def test_one_problem_that_turns_right_at_the_largest_budget_is_still_rising() -> None:
    point = saturation_point("s", "direct", records({64: 0, 256: 1}, problems=1))
    assert point.status == "rising"
    assert point.extrapolated_budget is not None and point.extrapolated_budget > 256
    assert all(math.isfinite(value) for value in (point.p or 0.0, point.ceiling or 0.0))


@pytest.mark.parametrize("threshold", [0.0, -1.0, math.nan, math.inf])
def test_an_unusable_threshold_is_a_typed_error(threshold: float) -> None:
    with pytest.raises(SaturationError, match="not a positive number"):
        saturation_point("s", "direct", records(FLATTENING), min_gain_per_1k_tokens=threshold)


def test_points_are_per_strategy_label() -> None:
    both = records(FLATTENING) + records({100: 1}, problems=2, strategy="elastic")
    points = saturation_points(both, strategy_label, 0.1)
    assert [(point.strategy, point.status) for point in points] == [("direct", "saturated"), ("elastic", "unfit")]


def test_the_report_prints_the_saturation_points_in_every_format() -> None:
    report = build_report(records(FLATTENING) + records({100: 1}, problems=2, strategy="elastic"))
    buffer = io.StringIO()
    render_rich(report, Console(file=buffer, width=200))
    assert "direct: no saturation within 800 tokens (model: ~900)" in buffer.getvalue()
    assert "elastic: no saturation point (cannot fit" in buffer.getvalue()
    assert "- saturation: direct: no saturation within 800 tokens" in render_markdown(report)
    saturation = json.loads(render_json(report))["saturation"]
    assert [(item["strategy"], item["status"]) for item in saturation] == [("direct", "rising"), ("elastic", "unfit")]
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert {row["strategy"]: row["saturation_budget"] for row in rows} == {"direct": "", "elastic": ""}


def test_the_report_threshold_is_an_option() -> None:
    report = build_report(records(FLATTENING), saturation_threshold=0.1)
    (point,) = report.saturation
    assert point.budget == 600
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert {row["saturation_budget"] for row in rows} == {"600"}


def test_the_cli_takes_the_threshold_and_refuses_a_bad_one_with_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records(FLATTENING)))
    assert main(["report", str(path), "--saturation-threshold", "0.1"]) == 0
    assert "saturation: direct: saturates at 600 tokens" in capsys.readouterr().out
    assert main(["report", str(path), "--saturation-threshold", "-1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a positive number" in err


def test_the_cli_help_names_the_modules_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert f"default {DEFAULT_MIN_GAIN_PER_1K_TOKENS}" in capsys.readouterr().out.replace("\n", " ")


def test_the_ceiling_is_an_accuracy_even_where_the_points_ask_for_more() -> None:
    # 0.5 then 1.0 at one and two units: unconstrained, p -> 0 and F_max -> infinity.
    rising = fit([100, 200], [0.5, 1.0])
    assert rising.ceiling == 1.0
    assert fit([64, 256, 1024], [1.0, 1.0, 1.0]).ceiling == pytest.approx(1.0)


def flattening_policy() -> Policy:
    """Every bin runs `direct` at 800 tokens; its curve climbs 100, 200, 400, 800 (the FLATTENING accuracies)."""
    curve = [
        Choice("direct", budget, {}, solved / PROBLEMS, float(budget), PROBLEMS)
        for budget, solved in FLATTENING.items()
    ]
    return Policy((0.3, 0.6), {name: curve[-1] for name in BINS}, {name: list(curve) for name in BINS})


def test_a_capped_policy_never_runs_a_configuration_past_its_saturation_budget() -> None:
    caps = saturation_caps(records(FLATTENING), 0.1)
    assert caps == {config_label("direct", {}): 600}
    uncapped, policy = flattening_policy(), flattening_policy()
    policy.cap_at_saturation(caps)
    assert uncapped.choose("hard", 10_000).budget == 800
    assert policy.choose("hard", 10_000).budget == 400
    assert [point.budget for point in policy.curves["hard"]] == [100, 200, 400]
    shares = allocate(["easy", "normal", "hard"], policy.curves, 30_000)
    assert sum(shares) == 30_000
    assert {policy.point_at(name, share).budget for name, share in zip(BINS, shares, strict=True)} == {400}
    at_a_point = flattening_policy()
    at_a_point.cap_at_saturation({config_label("direct", {}): 200})
    assert at_a_point.choose("hard", 10_000).budget == 200


def test_a_configuration_without_a_saturation_point_is_not_capped() -> None:
    assert saturation_caps(records(FLATTENING), 0.01) == {}
    policy = flattening_policy()
    policy.cap_at_saturation({})
    assert policy.choose("hard", 10_000).budget == 800


def test_calibrate_refuses_a_bad_threshold_before_the_engine_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records(FLATTENING)))
    code = main(["calibrate", str(path), "--out", str(tmp_path / "p.json"), "--saturation-threshold", "nan"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not a positive number" in err
    assert not (tmp_path / "p.json").exists()


def test_calibrate_writes_a_policy_capped_at_the_records_saturation_points(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def learned(*_: object) -> Calibration:
        return Calibration(flattening_policy(), PROBLEMS)

    monkeypatch.setattr(calibrate_command, "calibration_problems", lambda *_: {})
    monkeypatch.setattr(calibrate_command, "_calibrate", learned)
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(record | {"model": "m"}) + "\n" for record in records(FLATTENING)))
    out = tmp_path / "policy.json"
    assert main(["calibrate", str(path), "--out", str(out), "--force", "--saturation-threshold", "0.1"]) == 0
    capsys.readouterr()
    assert {load_policy(out).choose(name, 10_000).budget for name in BINS} == {400}
