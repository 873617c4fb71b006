from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.confidence import (
    GroupWindow,
    group_confidences,
    keep_top,
    stop_threshold,
    token_confidence,
    trace_score,
)

confidences = st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=1, max_size=60)


def test_token_confidence_is_minus_the_mean_of_the_top_k_logprobs_only() -> None:
    # top-2 plus the sampled token (-6.0), which is not among the top 2 and must not count
    position = {1: -0.1, 2: -2.1, 3: -6.0}
    assert token_confidence(position, 2) == pytest.approx(1.1)
    assert token_confidence(position, 3) == pytest.approx((0.1 + 2.1 + 6.0) / 3)


def test_token_confidence_ignores_non_finite_logprobs_and_is_zero_without_any() -> None:
    assert token_confidence({1: -1.0, 2: -math.inf}, 2) == pytest.approx(1.0)
    assert token_confidence({}, 5) == 0.0


def test_a_peaked_distribution_is_more_confident_than_a_flat_one() -> None:
    peaked = {1: -0.01, 2: -8.0, 3: -9.0}
    flat = {1: -1.0, 2: -1.1, 3: -1.2}
    assert token_confidence(peaked, 3) > token_confidence(flat, 3)


def test_groups_are_the_means_of_every_full_sliding_window() -> None:
    assert group_confidences([1.0, 2.0, 3.0, 4.0], 2) == pytest.approx([1.5, 2.5, 3.5])
    assert group_confidences([1.0, 3.0], 5) == pytest.approx([2.0])
    assert group_confidences([], 3) == []


def test_trace_scores() -> None:
    values = [5.0] * 8 + [1.0, 1.0] + [4.0] * 10
    assert trace_score(values, "lowest_group", 2, 4) == pytest.approx(1.0)
    assert trace_score(values, "tail", 2, 4) == pytest.approx(4.0)
    assert trace_score(values, "mean", 2, 4) == pytest.approx(sum(values) / len(values))
    # 19 windows of 2: seven 5.0, then 3.0, 1.0, 2.5 and nine 4.0; the lowest 10% is floor(1.9) = 1 of them
    assert trace_score(values, "bottom_10", 2, 4) == pytest.approx(1.0)
    assert trace_score([], "tail", 2, 4) == 0.0


@given(confidences, st.integers(min_value=1, max_value=10))
@settings(max_examples=60, deadline=None)
def test_the_bottom_10_percent_lies_between_the_lowest_group_and_the_mean_group(
    values: list[float], window: int
) -> None:
    groups = group_confidences(values, window)
    bottom = trace_score(values, "bottom_10", window, 4)
    assert min(groups) - 1e-9 <= bottom <= sum(groups) / len(groups) + 1e-9


@given(confidences, st.integers(min_value=1, max_value=10))
@settings(max_examples=60, deadline=None)
def test_the_running_window_agrees_with_the_sliding_groups(values: list[float], window: int) -> None:
    running = GroupWindow(window)
    seen = [group for group in (running.push(value) for value in values) if group is not None]
    # One group per full window, as each window's mean is written by hand: nothing before the window fills.
    expected = [sum(values[start : start + window]) / window for start in range(len(values) - window + 1)]
    assert seen == pytest.approx(expected, abs=1e-6)


def test_the_running_window_gives_each_full_windows_mean_by_hand() -> None:
    running = GroupWindow(3)
    assert [running.push(value) for value in [3.0, 6.0, 9.0, 0.0, 3.0]] == pytest.approx([None, None, 6.0, 5.0, 4.0])


@given(st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=1, max_size=50), st.floats(1.0, 100.0))
@settings(max_examples=80, deadline=None)
def test_keep_top_keeps_exactly_the_top_eta_percent(scores: list[float], eta: float) -> None:
    kept = keep_top(scores, eta)
    assert len(kept) == max(1, math.ceil(len(scores) * eta / 100 - 1e-9))
    dropped = set(range(len(scores))) - set(kept)
    assert all(scores[k] >= scores[d] for k in kept for d in dropped)


def test_keep_top_breaks_ties_by_order() -> None:
    assert keep_top([1.0, 2.0, 2.0, 2.0], 50) == [1, 2]
    assert keep_top([], 50) == []


def test_the_stop_threshold_is_the_100_minus_eta_percentile() -> None:
    lowest = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert stop_threshold(lowest, 90) == pytest.approx(1.4)  # DeepConf-high: keeps ~90%
    assert stop_threshold(lowest, 10) == pytest.approx(4.6)  # DeepConf-low: keeps ~10%
