from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.tree_selection import (
    EtsWeights,
    Leaf,
    StepTree,
    proportional_allocation,
    select_beam,
    select_ets,
    select_rebase,
    softmax,
    solve_ets_ilp,
)


def build_tree(nodes: dict[int, tuple[int | None, int]]) -> StepTree:
    """A tree from {node: (parent, tokens)}."""
    tree = StepTree()
    for node, (parent, tokens) in nodes.items():
        tree.add(node, parent, tokens)
    return tree


def test_step_tree_counts_shared_ancestors_once_in_distinct_tokens() -> None:
    tree = build_tree({1: (None, 40), 2: (1, 10), 3: (1, 5), 4: (None, 7)})
    assert tree.path(3) == [1, 3]
    assert tree.distinct_tokens([2, 3]) == 40 + 10 + 5
    assert tree.unshared_tokens([2, 3]) == (40 + 10) + (40 + 5)
    assert tree.distinct_tokens([2, 4]) == tree.unshared_tokens([2, 4]) == 40 + 10 + 7


def test_ets_picks_the_cheaper_of_two_equally_rewarded_leaves() -> None:
    tree = build_tree({1: (None, 10), 2: (None, 80), 3: (1, 10), 4: (2, 10)})
    leaves = [Leaf(4, 0.7), Leaf(3, 0.7)]
    kept = solve_ets_ilp(tree, leaves, width=1, weights=EtsWeights(coverage=0.0), temperature=0.2)
    assert kept == {3}


def test_ets_keeps_siblings_that_share_an_ancestor_over_cousins_that_do_not() -> None:
    tree = build_tree({1: (None, 40), 2: (None, 40), 3: (1, 10), 4: (1, 10), 5: (2, 10)})
    leaves = [Leaf(3, 0.5), Leaf(5, 0.5), Leaf(4, 0.5)]
    kept = solve_ets_ilp(tree, leaves, width=2, weights=EtsWeights(coverage=0.0, kv=0.5), temperature=0.2)
    assert kept == {3, 4}


def test_ets_coverage_keeps_the_best_leaf_of_every_cluster_when_its_weight_dominates() -> None:
    tree = build_tree({1: (None, 10), **{leaf: (1, 10) for leaf in range(2, 8)}})
    scores = {2: 0.9, 3: 0.8, 4: 0.7, 5: 0.6, 6: 0.2, 7: 0.3}
    clusters = {2: 0, 3: 0, 4: 0, 5: 1, 6: 2, 7: 2}
    leaves = [Leaf(node, scores[node], clusters[node]) for node in scores]
    weights = EtsWeights(reward=0.1, coverage=10.0, kv=1.0)
    kept = solve_ets_ilp(tree, leaves, width=6, weights=weights, temperature=0.2)
    assert kept == {2, 5, 7}


def test_ets_without_coverage_or_kv_cost_keeps_the_top_width_leaves() -> None:
    tree = build_tree({1: (None, 10), **{leaf: (1, 10) for leaf in range(2, 7)}})
    leaves = [Leaf(node, score, cluster=0) for node, score in zip(range(2, 7), [0.1, 0.9, 0.5, 0.8, 0.3], strict=True)]
    kept = solve_ets_ilp(tree, leaves, width=2, weights=EtsWeights(coverage=0.0, kv=0.0), temperature=0.2)
    assert kept == {3, 5}


def test_ets_keeps_at_least_one_leaf_even_when_kv_cost_outweighs_every_reward() -> None:
    tree = build_tree({1: (None, 100), 2: (1, 10), 3: (1, 10)})
    kept = solve_ets_ilp(tree, [Leaf(2, 0.1), Leaf(3, 0.2)], width=2, weights=EtsWeights(kv=50.0), temperature=0.2)
    assert kept == {3}


def test_ets_gives_every_kept_leaf_a_child_and_splits_the_total() -> None:
    tree = build_tree({1: (None, 10), 2: (1, 10), 3: (1, 10), 4: (None, 500), 5: (4, 10)})
    leaves = [Leaf(2, 0.9), Leaf(3, 0.3), Leaf(5, 0.5)]
    allocation = select_ets(tree, leaves, width=3, total=8, weights=EtsWeights(coverage=0.0), temperature=0.2)
    assert set(allocation) == {2, 3}
    assert sum(allocation.values()) == 8
    assert min(allocation.values()) >= 1
    assert allocation == {2: 7, 3: 1}


def test_beam_gives_the_round_total_to_the_best_leaves_k_children_each() -> None:
    leaves = [Leaf(10, 0.2), Leaf(11, 0.9), Leaf(12, 0.5), Leaf(13, 0.7)]
    assert select_beam(leaves, total=6, expand=3) == {11: 3, 13: 3}
    assert select_beam(leaves, total=5, expand=3) == {11: 3, 13: 2}
    assert select_beam(leaves, total=1, expand=3) == {11: 1}


def test_rebase_splits_the_total_in_proportion_to_softmax_of_scores() -> None:
    leaves = [Leaf(1, 0.9), Leaf(2, 0.5), Leaf(3, 0.1)]
    weights = np.exp(np.array([0.9, 0.5, 0.1]) / 0.2)
    shares = weights / weights.sum() * 8  # 6.93, 0.94, 0.13
    assert [math.floor(share) for share in shares] == [6, 0, 0]
    allocation = select_rebase(leaves, total=8, temperature=0.2)
    assert allocation == {1: 7, 2: 1}
    assert sum(allocation.values()) == 8


def test_rebase_with_a_high_temperature_spreads_the_total_evenly() -> None:
    leaves = [Leaf(node, score) for node, score in enumerate([0.9, 0.1, 0.5, 0.3])]
    assert select_rebase(leaves, total=8, temperature=1000.0) == {0: 2, 1: 2, 2: 2, 3: 2}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
    st.integers(0, 64),
    st.floats(0.01, 10.0),
)
def test_proportional_allocation_sums_to_the_total_and_stays_within_one_of_each_share(
    scores: list[float], total: int, temperature: float
) -> None:
    weights = softmax(scores, temperature)
    counts = proportional_allocation(weights, total)
    assert sum(counts) == total
    for count, weight in zip(counts, weights, strict=True):
        assert abs(count - weight * total) < 1.0 + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 2), st.integers(1, 30)), min_size=1, max_size=8),
    st.integers(1, 6),
    st.floats(0.0, 5.0),
    st.floats(0.0, 5.0),
)
def test_ets_always_keeps_between_one_and_width_leaves(
    specs: list[tuple[float, int, int]], width: int, coverage: float, kv: float
) -> None:
    tree = build_tree({1: (None, 20), **{2 + i: (1, tokens) for i, (_, _, tokens) in enumerate(specs)}})
    leaves = [Leaf(2 + i, score, cluster) for i, (score, cluster, _) in enumerate(specs)]
    kept = solve_ets_ilp(tree, leaves, width, EtsWeights(coverage=coverage, kv=kv), temperature=0.2)
    assert 1 <= len(kept) <= min(width, len(leaves))
