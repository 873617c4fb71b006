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
    rebase_counts,
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


def test_ets_charges_every_node_alike_by_default_and_by_its_tokens_on_request() -> None:
    # Leaf 1 is one 80-token step; leaf 3 is two 10-token steps. Both earn width share 1/2.
    # Per node (1/4 each, the prompt counted): keep 1: 1/2 - 1.5/4 = 0.125 (best); keep 3: 1/2 - 1.5 * 2/4 < 0.
    # Per token (of 100): keep 1: 1/2 - 1.5 * 0.8 < 0; keep 3: 1/2 - 1.5 * 0.2 = 0.2 (best).
    tree = build_tree({1: (None, 80), 2: (None, 10), 3: (2, 10)})
    leaves = [Leaf(1, 0.5), Leaf(3, 0.5)]
    assert solve_ets_ilp(tree, leaves, 2, EtsWeights(coverage=0.0, kv=1.5), temperature=0.2) == {1}
    by_tokens = EtsWeights(coverage=0.0, kv=1.5, kv_cost="tokens")
    assert solve_ets_ilp(tree, leaves, 2, by_tokens, temperature=0.2) == {3}


def test_ets_rewards_a_leaf_by_its_rebase_width_share_so_one_rebase_gives_nothing_adds_nothing() -> None:
    # REBASE splits width 3 as 2 : 1 : 0 (softmax 0.557, 0.433, 0.010), so the third leaf's reward is 0
    # and any KV cost drops it; a softmax reward (0.010) would have paid for its cost (0.03 / 4).
    tree = build_tree({1: (None, 10), 2: (None, 10), 3: (None, 10)})
    leaves = [Leaf(1, 0.9), Leaf(2, 0.85), Leaf(3, 0.1)]
    assert rebase_counts(leaves, 3, 0.2) == [2, 1, 0]
    assert solve_ets_ilp(tree, leaves, 3, EtsWeights(coverage=0.0, kv=0.03), temperature=0.2) == {1, 2}


def test_ets_default_weights_are_the_reference_implementations() -> None:
    # Leaf 2 (cluster 0) takes all of REBASE's width 2; leaf 6 (cluster 1) has no share and four
    # nodes of its own (4/7 of the KV cost). Coverage 1.5 pays 1.5/2 > 4/7 for its cluster; 1.0 would not.
    tree = build_tree({1: (None, 10), 2: (1, 10), 3: (None, 10), 4: (3, 10), 5: (4, 10), 6: (5, 10)})
    leaves = [Leaf(2, 0.9, cluster=0), Leaf(6, 0.1, cluster=1)]
    assert EtsWeights() == EtsWeights(reward=1.0, coverage=1.5, kv=1.0, kv_cost="nodes")
    assert solve_ets_ilp(tree, leaves, 2, EtsWeights(), temperature=0.2) == {2, 6}
    assert solve_ets_ilp(tree, leaves, 2, EtsWeights(coverage=1.0), temperature=0.2) == {2}


def test_ets_keeps_siblings_that_share_an_ancestor_over_cousins_that_do_not() -> None:
    # Equal shares of width 3 (1/3 each), 1/6 per node: {3, 4} needs 3 nodes, {3, 5} four, all three five.
    tree = build_tree({1: (None, 40), 2: (None, 40), 3: (1, 10), 4: (1, 10), 5: (2, 10)})
    leaves = [Leaf(3, 0.5), Leaf(5, 0.5), Leaf(4, 0.5)]
    kept = solve_ets_ilp(tree, leaves, width=3, weights=EtsWeights(coverage=0.0, kv=1.5), temperature=0.2)
    assert kept == {3, 4}


def test_ets_coverage_keeps_the_best_leaf_of_every_cluster_when_its_weight_dominates() -> None:
    tree = build_tree({1: (None, 10), **{leaf: (1, 10) for leaf in range(2, 8)}})
    scores = {2: 0.9, 3: 0.8, 4: 0.7, 5: 0.6, 6: 0.5, 7: 0.6}
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


def test_ets_splits_the_total_over_the_kept_leaves_as_rebase_does_even_leaving_one_without_a_child() -> None:
    # The default weights keep leaf 6 for its cluster (as in the test above), but REBASE's split of
    # 2 children over the kept leaves (softmax 0.98 : 0.02) gives it none: the reference's rule.
    tree = build_tree({1: (None, 10), 2: (1, 10), 3: (None, 10), 4: (3, 10), 5: (4, 10), 6: (5, 10)})
    leaves = [Leaf(2, 0.9, cluster=0), Leaf(6, 0.1, cluster=1)]
    assert solve_ets_ilp(tree, leaves, 2, EtsWeights(), temperature=0.2) == {2, 6}
    assert select_ets(tree, leaves, width=2, total=2, weights=EtsWeights(), temperature=0.2) == {2: 2}


def test_ets_gives_the_children_of_dropped_leaves_to_the_kept_ones() -> None:
    # Width shares 1/3 each, 1.5/6 per node: keeping {2, 3} (three nodes) nets -0.083, all three -0.25,
    # one leaf -0.167. REBASE over all three splits 8 as 3 : 3 : 2; ETS gives leaf 5's children to 2 and 3.
    tree = build_tree({1: (None, 10), 2: (1, 10), 3: (1, 10), 4: (None, 10), 5: (4, 10)})
    leaves = [Leaf(2, 0.7), Leaf(3, 0.65), Leaf(5, 0.6)]
    weights = EtsWeights(coverage=0.0, kv=1.5)
    assert select_rebase(leaves, 8, 0.2) == {2: 3, 3: 3, 5: 2}
    assert select_ets(tree, leaves, width=3, total=8, weights=weights, temperature=0.2) == {2: 4, 3: 4}


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
