from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies.switch_rules import FixedMode, Mode, SwiReasoning, SwitchRule, ThinkRouter

HIGH, LOW = 2.0, 0.5


def modes(rule: SwitchRule, entropies: list[float], max_prob: float = 0.5) -> list[Mode | None]:
    return [rule.observe(entropy, max_prob) for entropy in entropies]


def test_swireasoning_commits_to_explicit_when_entropy_falls_below_the_blocks_start() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=4, min_block=2)
    assert modes(rule, [HIGH, HIGH, LOW]) == ["latent", "latent", "explicit"]
    assert rule.switches == 1


def test_swireasoning_keeps_a_block_for_min_block_steps() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=4, min_block=3)
    assert modes(rule, [HIGH, LOW, LOW, LOW]) == ["latent", "latent", "latent", "explicit"]


def test_swireasoning_explores_in_latent_when_entropy_rises_in_an_explicit_block() -> None:
    rule = SwiReasoning(start_mode="explicit", max_switches=4, min_block=1)
    assert modes(rule, [LOW, HIGH]) == ["explicit", "latent"]


def test_swireasoning_measures_the_trend_from_the_step_that_switched() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=4, min_block=1)
    assert modes(rule, [HIGH, 1.0, 0.9, 1.5]) == ["latent", "explicit", "explicit", "latent"]
    assert rule.reference == 1.5


def test_a_switch_past_the_cap_ends_thinking_for_good() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=1, min_block=1)
    assert modes(rule, [HIGH, LOW, HIGH, LOW, LOW]) == ["latent", "explicit", None, None, None]
    assert rule.switches == 1
    assert rule.capped


def test_a_cap_of_zero_thinks_in_one_mode_until_the_rule_would_switch() -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=0, min_block=1)
    assert modes(rule, [HIGH, HIGH, LOW]) == ["latent", "latent", None]


@given(
    st.lists(st.floats(min_value=0.0, max_value=5.0), max_size=60),
    st.integers(min_value=0, max_value=5),
    st.integers(min_value=1, max_value=4),
)
def test_switches_never_exceed_the_cap(entropies: list[float], cap: int, min_block: int) -> None:
    rule = SwiReasoning(start_mode="latent", max_switches=cap, min_block=min_block)
    decided = modes(rule, entropies)
    changes = sum(
        1 for earlier, later in itertools.pairwise(decided) if None not in (earlier, later) and earlier != later
    )
    assert rule.switches <= cap
    assert changes <= rule.switches


def test_thinkrouter_goes_explicit_below_the_threshold_and_latent_at_or_above_it() -> None:
    rule = ThinkRouter(threshold=0.6, start_mode="latent", max_switches=10)
    decided = [rule.observe(1.0, max_prob) for max_prob in (0.9, 0.6, 0.3, 0.59, 0.7)]
    assert decided == ["latent", "latent", "explicit", "explicit", "latent"]
    assert rule.switches == 2


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5])
def test_thinkrouter_refuses_a_threshold_outside_zero_one(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        ThinkRouter(threshold=threshold)


def test_a_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="max_switches"):
        SwiReasoning(max_switches=-1)


@pytest.mark.parametrize("mode", ["latent", "explicit"])
def test_a_fixed_mode_never_switches(mode: Mode) -> None:
    rule = FixedMode(mode)
    assert modes(rule, [HIGH, LOW, HIGH, 0.0]) == [mode] * 4
    assert rule.switches == 0
