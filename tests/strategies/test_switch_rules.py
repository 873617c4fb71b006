from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies.switch_rules import CapAction, ColdStop, FixedMode, Mode, SwiReasoning, SwitchRule, ThinkRouter

HIGH, LOW = 2.0, 0.5


def modes(rule: SwitchRule, entropies: list[float], max_prob: float = 0.5) -> list[Mode]:
    decided: list[Mode] = []
    for entropy in entropies:
        decided.append(rule.observe(entropy, max_prob))
        if rule.forced:
            break
    return decided


def cap_actions(rule: SwitchRule, entropies: list[float]) -> list[CapAction | None]:
    actions: list[CapAction | None] = []
    for entropy in entropies:
        rule.observe(entropy, 0.5)
        actions.append(rule.cap_action)
        if rule.forced:
            break
    return actions


def test_swireasoning_commits_to_explicit_at_once_when_entropy_falls_below_the_reference() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=4, window=8)
    assert modes(rule, [HIGH, LOW]) == ["latent", "explicit"]
    assert rule.switches == rule.commits == 1


def test_swireasoning_returns_to_latent_only_after_the_dwell_window() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=4, window=3)
    assert modes(rule, [HIGH, LOW, HIGH, HIGH, HIGH]) == ["latent", "explicit", "explicit", "explicit", "latent"]
    assert rule.switches == 2
    assert rule.commits == 1


def test_swireasoning_stays_explicit_while_entropy_does_not_rise_above_the_reference() -> None:
    rule = SwiReasoning(start_mode="explicit", max_switches=4, window=1)
    assert modes(rule, [LOW, LOW, 0.2, LOW]) == ["explicit"] * 4


def test_swireasoning_measures_the_trend_from_the_step_that_switched() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=4, window=1)
    assert modes(rule, [HIGH, 1.0, 0.9, 1.5]) == ["latent", "explicit", "explicit", "latent"]
    assert rule.reference == 1.5


def test_only_latent_to_explicit_switches_count_toward_the_cap() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=2, window=1)
    assert modes(rule, [HIGH, LOW, HIGH, LOW]) == ["latent", "explicit", "latent", "explicit"]
    assert rule.switches == 3
    assert rule.commits == 2
    assert rule.cap_action == "close"


def test_the_cap_closes_thinking_from_c_max_to_twice_c_max_and_forces_the_answer_past_it() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=2, window=1)
    actions = cap_actions(rule, [HIGH, LOW, HIGH, LOW, HIGH, LOW, HIGH, LOW, HIGH, LOW, HIGH, LOW])
    # commits 1..5 land on the explicit steps; 2, 3 and 4 (C_max to 2*C_max) close, 5 forces.
    assert actions == [None, None, None, "close", None, "close", None, "close", None, "force"]
    assert rule.forced
    with pytest.raises(RuntimeError, match="cap"):
        rule.observe(LOW, 0.5)


def test_without_a_cap_swireasoning_switches_as_often_as_the_trend_says() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=None, window=1)
    modes(rule, [HIGH, LOW] * 2 + [HIGH * (2 + step) if step % 2 else LOW / (2 + step) for step in range(40)])
    assert rule.commits > 8
    assert not rule.forced


@given(
    st.lists(st.floats(min_value=0.0, max_value=5.0), max_size=80),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=6),
)
def test_latent_to_explicit_switches_never_exceed_twice_the_cap_plus_one(
    entropies: list[float], cap: int, window: int
) -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=cap, window=window)
    decided = modes(rule, entropies)
    commits = sum(
        1 for earlier, later in itertools.pairwise(["latent", *decided]) if (earlier, later) == ("latent", "explicit")
    )
    assert commits == rule.commits <= 2 * cap + 1
    assert rule.forced == (rule.commits == 2 * cap + 1)


@given(st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=2, max_size=80), st.integers(1, 6))
def test_an_explicit_block_lasts_at_least_the_window(entropies: list[float], window: int) -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=None, window=window)
    decided = modes(rule, entropies)
    runs: list[tuple[Mode, int]] = []
    for mode in decided:
        runs = [*runs[:-1], (mode, runs[-1][1] + 1)] if runs and runs[-1][0] == mode else [*runs, (mode, 1)]
    assert all(length >= window for mode, length in runs[:-1] if mode == "explicit")


def test_thinkrouter_goes_explicit_below_the_threshold_and_latent_at_or_above_it() -> None:
    rule = ThinkRouter(threshold=0.6, start_mode="latent")
    decided = [rule.observe(1.0, max_prob) for max_prob in (0.9, 0.6, 0.3, 0.59, 0.7)]
    assert decided == ["latent", "latent", "explicit", "explicit", "latent"]
    assert rule.switches == 2


def test_thinkrouter_routes_every_step_and_is_never_capped() -> None:
    rule = ThinkRouter(threshold=0.6)
    decided = [rule.observe(1.0, 0.9 if step % 2 else 0.1) for step in range(50)]
    assert rule.switches == 50
    assert rule.cap_action is None
    assert decided[-2:] == ["explicit", "latent"]


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5])
def test_thinkrouter_refuses_a_threshold_outside_zero_one(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        ThinkRouter(threshold=threshold)


@pytest.mark.parametrize("cap", [0, -1])
def test_a_cap_below_one_is_refused(cap: int) -> None:
    with pytest.raises(ValueError, match="max_switches"):
        SwiReasoning(max_switches=cap)


def test_a_window_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        SwiReasoning(window=0)


@pytest.mark.parametrize("mode", ["latent", "explicit"])
def test_a_fixed_mode_never_switches(mode: Mode) -> None:
    rule = FixedMode(mode)
    assert modes(rule, [HIGH, LOW, HIGH, 0.0]) == [mode] * 4
    assert rule.switches == 0


def test_cold_stop_fires_after_a_run_of_confident_steps_and_a_doubt_resets_the_run() -> None:
    cold = ColdStop(entropy=0.01, steps=3)
    assert [cold.observe(entropy) for entropy in (0.0, 0.005, 0.5, 0.0, 0.0)] == [False] * 5
    assert cold.observe(0.001)


@pytest.mark.parametrize(("entropy", "steps"), [(0.0, 3), (0.01, 0)])
def test_cold_stop_refuses_a_threshold_it_could_never_meet(entropy: float, steps: int) -> None:
    with pytest.raises(ValueError, match="Cold Stop"):
        ColdStop(entropy, steps)
