"""The benchmarks' order rotation and noise verdict (bench/alternation.py), without an engine."""

from __future__ import annotations

import argparse
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.alternation import per_side, ratios, repeat_count, schedule, spread, verdict, within_noise


def test_two_sides_take_turns_going_first() -> None:
    assert schedule(["raw", "toolkit"], 4) == [
        (0, "raw"),
        (0, "toolkit"),
        (1, "toolkit"),
        (1, "raw"),
        (2, "raw"),
        (2, "toolkit"),
        (3, "toolkit"),
        (3, "raw"),
    ]


@given(sides=st.integers(1, 5), repeats=st.integers(1, 12))
def test_every_repeat_runs_each_side_once_and_each_side_leads_as_often_as_any_other(sides: int, repeats: int) -> None:
    names = [f"side{index}" for index in range(sides)]
    order = schedule(names, repeats)
    for repeat in range(repeats):
        assert sorted(side for number, side in order if number == repeat) == names
    assert [number for number, _ in order] == sorted(number for number, _ in order)
    leads = Counter(order[repeat * sides][1] for repeat in range(repeats))
    counts = [leads[name] for name in names]
    assert max(counts) - min(counts) <= 1


def test_three_graders_each_go_first_once_in_three_rounds() -> None:
    order = schedule(["before", "process", "jail"], 3)
    assert [order[index][1] for index in (0, 3, 6)] == ["before", "process", "jail"]


def test_values_are_grouped_by_side_in_the_order_they_ran() -> None:
    order = schedule(["a", "b"], 3)
    grouped = per_side((side, float(repeat)) for repeat, side in order)
    assert grouped == {"a": [0.0, 1.0, 2.0], "b": [0.0, 1.0, 2.0]}


def test_ratios_pair_repeats_and_refuse_unequal_counts() -> None:
    assert ratios([2.0, 3.0], [1.0, 4.0]) == [2.0, 0.75]
    with pytest.raises(ValueError):
        ratios([1.0, 2.0], [1.0])


def test_spread_shows_mean_sample_sd_and_range() -> None:
    assert spread([1.0, 2.0, 3.0]) == "2.0 ± 1.0 (1.0-3.0)"
    assert spread([10.0, 14.0], digits=2) == "12.00 ± 2.83 (10.00-14.00)"


@pytest.mark.parametrize("per_repeat", [[0.87, 1.13], [0.924, 1.179, 1.124], [1.0, 1.2], [1.0, 1.0]])
def test_repeats_that_disagree_in_direction_are_within_noise_and_give_no_ratio(per_repeat: list[float]) -> None:
    line = verdict("jail / before", per_repeat)
    assert line.startswith("jail / before: within noise (per-repeat ")
    assert "x" not in line.split("within noise")[1]
    assert "median" not in line


@pytest.mark.parametrize(("per_repeat", "median"), [([1.05, 1.2, 1.1], "1.100x"), ([0.6, 0.7], "0.650x")])
def test_repeats_that_agree_give_the_median_ratio_and_every_repeat(per_repeat: list[float], median: str) -> None:
    line = verdict("server / in-process", per_repeat)
    assert line.startswith(f"server / in-process: {median} median (per-repeat ")
    assert "noise" not in line
    assert all(f"{ratio:.3f}" in line for ratio in per_repeat)


def test_an_interval_around_zero_is_within_noise_of_no_difference() -> None:
    assert within_noise((-0.10, 0.15), 0.0)
    assert not within_noise((0.05, 0.15), 0.0)
    assert not within_noise((-0.15, -0.05), 0.0)


def test_a_repeat_count_below_two_is_refused_with_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--repeats", type=repeat_count, default=2)
    assert parser.parse_args(["--repeats", "3"]).repeats == 3
    for bad, reason in (("1", "too few"), ("0", "too few"), ("two", "not a whole number")):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(["--repeats", bad])
        assert exited.value.code == 2
        error = capsys.readouterr().err.splitlines()
        assert reason in error[-1]
        assert "Traceback" not in "\n".join(error)
