from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.allocation import allocate
from controllers.policy import Choice
from reasoner import BudgetError

STEEP_HARD = {
    "easy": [Choice("direct", 64, accuracy=0.9), Choice("direct", 512, accuracy=0.92)],
    "normal": [Choice("direct", 64, accuracy=0.5), Choice("elastic", 512, accuracy=0.6)],
    "hard": [Choice("direct", 64, accuracy=0.1), Choice("self_consistency", 512, accuracy=0.6)],
}
FLAT = {name: [Choice("direct", 64, accuracy=0.5), Choice("elastic", 512, accuracy=0.5)] for name in STEEP_HARD}


@settings(max_examples=200, deadline=None)
@given(
    bins=st.lists(st.sampled_from(["easy", "normal", "hard"]), min_size=1, max_size=12),
    extra=st.integers(min_value=0, max_value=10_000),
    spent=st.integers(min_value=0, max_value=40),
)
def test_allocation_never_exceeds_the_total(bins: list[str], extra: int, spent: int) -> None:
    total = len(bins) * (64 + spent) + extra
    shares = allocate(bins, STEEP_HARD, total, [spent] * len(bins))
    assert sum(shares) + spent * len(bins) <= total
    assert all(share >= 64 for share in shares)


def test_allocation_spends_more_on_hard_prompts_when_their_curve_is_steeper() -> None:
    shares = allocate(["easy", "hard", "easy", "hard"], STEEP_HARD, 4 * 64 + 2 * 448)
    assert shares[1] == shares[3] == 512
    assert shares[0] == shares[2] == 64


def test_allocation_spreads_tokens_no_upgrade_can_use_evenly() -> None:
    shares = allocate(["easy", "hard"], STEEP_HARD, 700)
    assert shares == [64 + 62, 512 + 62]


def test_allocation_is_uniform_when_curves_are_flat() -> None:
    shares = allocate(["easy", "normal", "hard"], FLAT, 900)
    assert max(shares) - min(shares) <= 1
    assert sum(shares) == 900


def test_allocation_splits_evenly_when_the_cheapest_points_do_not_fit() -> None:
    shares = allocate(["easy", "hard"], STEEP_HARD, 200, [47, 47])
    assert shares == [53, 53]


def test_allocation_refuses_fewer_tokens_than_prompts_after_estimation() -> None:
    with pytest.raises(BudgetError, match="raise the batch budget"):
        allocate(["easy", "hard"], STEEP_HARD, 95, [47, 47])
