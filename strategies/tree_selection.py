"""Selection policies for step-level tree search: which leaves to keep, and how many children each gets.

Pure functions over a small tree (`StepTree`: parent and token count of every step node)
and the round's candidate leaves (`Leaf`: node, score, cluster), so each policy can be
checked by hand on a tree built in a test. Every policy returns an `Allocation`: kept leaf
-> number of children it gets next round (leaves it drops are absent).

- `select_beam`: the best-scored `ceil(total / expand)` leaves, `expand` children each (the
  last one what remains of `total`).
- `select_rebase` (REBASE, Wu et al. 2024): `total` children split across all leaves in
  proportion to softmax(score / temperature), rounded by largest remainder (the ETS reference
  code rounds up in score order, which favours the best leaf a little more); a leaf whose
  share rounds to 0 is dropped.
- `select_ets` (ETS, Hooper et al. 2025, as its reference code `rebase.py` does it): an integer
  linear program, solved by HiGHS (`scipy.optimize.milp`), keeps 1..`width` leaves maximising
  `reward_weight * sum(kept leaves' REBASE width shares) + coverage_weight * (clusters covered)
  / clusters - kv_weight * (KV cost of the distinct nodes the kept leaves need)`; a kept leaf
  needs every ancestor, and a shared ancestor is paid for once. A leaf's width share is the
  fraction of `width` REBASE would give it, so a leaf REBASE gives nothing adds no reward.
  The `total` children then go to the kept leaves by REBASE's split, and a kept leaf whose share
  rounds to 0 gets none (it was kept for its cluster, and the reference expands it no further).
  KV cost (`kv_cost`): `nodes` (the reference's) charges every node alike, 1 / (nodes in the
  candidates' tree, the prompt included); `tokens` charges a node its share of the tree's
  tokens, kept as an option because KV memory is tokens and steps range from 1 to `step_tokens`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Allocation = dict[int, int]
KvCost = Literal["nodes", "tokens"]


@dataclass
class StepTree:
    """Step nodes of a search, by id: each one's parent (None under the prompt) and token count."""

    parents: dict[int, int | None] = field(default_factory=dict)
    tokens: dict[int, int] = field(default_factory=dict)

    def add(self, node: int, parent: int | None, tokens: int) -> None:
        self.parents[node] = parent
        self.tokens[node] = tokens

    def path(self, node: int) -> list[int]:
        """The step nodes from the first step down to `node`, inclusive."""
        path: list[int] = []
        current: int | None = node
        while current is not None:
            path.append(current)
            current = self.parents[current]
        return path[::-1]

    def distinct_nodes(self, leaves: Iterable[int]) -> set[int]:
        """Every node some leaf in `leaves` needs: the union of their paths."""
        return {node for leaf in leaves for node in self.path(leaf)}

    def distinct_tokens(self, leaves: Iterable[int]) -> int:
        """Tokens in the union of the leaves' paths: each shared node counted once."""
        return sum(self.tokens[node] for node in self.distinct_nodes(leaves))

    def unshared_tokens(self, leaves: Iterable[int]) -> int:
        """Sum of the leaves' path lengths in tokens: what keeping them costs without sharing."""
        return sum(self.tokens[node] for leaf in leaves for node in self.path(leaf))


@dataclass(frozen=True)
class Leaf:
    """A candidate for the next round: its node, its score in [0, 1], and its semantic cluster."""

    node: int
    score: float
    cluster: int = 0


@dataclass(frozen=True)
class EtsWeights:
    """The three terms of the ETS objective (all >= 0), at the reference's values, and how KV is charged."""

    reward: float = 1.0
    coverage: float = 1.5
    kv: float = 1.0
    kv_cost: KvCost = "nodes"


def softmax(scores: Sequence[float], temperature: float) -> np.ndarray:
    """softmax(score / temperature), stable for any scores; temperature must be > 0."""
    logits = np.asarray(scores, dtype=float) / temperature
    weights = np.exp(logits - logits.max())
    return np.asarray(weights / weights.sum())


def proportional_allocation(weights: Sequence[float] | np.ndarray, total: int) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder; sums to `total`)."""
    shares = np.asarray(weights, dtype=float) * total / float(np.sum(weights))
    counts = [math.floor(share) for share in shares]
    by_remainder = sorted(range(len(counts)), key=lambda index: (counts[index] - shares[index], index))
    for index in by_remainder[: total - sum(counts)]:
        counts[index] += 1
    return counts


def select_beam(leaves: Sequence[Leaf], total: int, expand: int) -> Allocation:
    """Give `total` children to the best-scored leaves (ties: the earlier one), `expand` each, best first."""
    ranked = sorted(leaves, key=lambda leaf: -leaf.score)
    allocation: Allocation = {}
    for leaf in ranked:
        if total < 1:
            break
        allocation[leaf.node] = min(expand, total)
        total -= allocation[leaf.node]
    return allocation


def rebase_counts(leaves: Sequence[Leaf], total: int, temperature: float) -> list[int]:
    """REBASE's split of `total` children over `leaves`: in proportion to softmax(score / temperature)."""
    return proportional_allocation(softmax([leaf.score for leaf in leaves], temperature), total)


def select_rebase(leaves: Sequence[Leaf], total: int, temperature: float) -> Allocation:
    """Give `total` children out in proportion to softmax(score / temperature); drop leaves given none."""
    if not leaves:
        return {}
    counts = rebase_counts(leaves, total, temperature)
    return {leaf.node: count for leaf, count in zip(leaves, counts, strict=True) if count > 0}


def select_ets(
    tree: StepTree,
    leaves: Sequence[Leaf],
    width: int,
    total: int,
    weights: EtsWeights,
    temperature: float,
) -> Allocation:
    """ETS selection: solve the keep-which-leaves ILP, then split `total` children over the kept ones as REBASE does."""
    if not leaves:
        return {}
    kept = solve_ets_ilp(tree, leaves, width, weights, temperature)
    return select_rebase([leaf for leaf in leaves if leaf.node in kept], total, temperature)


def solve_ets_ilp(
    tree: StepTree, leaves: Sequence[Leaf], width: int, weights: EtsWeights, temperature: float
) -> set[int]:
    """The leaves the ETS integer linear program keeps (between 1 and `width` of them; `width` >= 1).

    Variables, all binary: `keep[i]` per leaf, `need[n]` per node on some leaf's path, and
    `covered[c]` per cluster. Constraints: `keep[i] <= need[n]` for each node on leaf i's
    path; `covered[c] <= sum(keep[i] for leaves i in c)`; `1 <= sum(keep) <= width`.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp  # 0.3 s to import: here, not at start-up

    nodes = sorted(tree.distinct_nodes(leaf.node for leaf in leaves))
    clusters = sorted({leaf.cluster for leaf in leaves})
    node_index = {node: len(leaves) + index for index, node in enumerate(nodes)}
    cluster_index = {cluster: len(leaves) + len(nodes) + index for index, cluster in enumerate(clusters)}
    variables = len(leaves) + len(nodes) + len(clusters)

    rewards = np.asarray(rebase_counts(leaves, width, temperature), dtype=float) / width
    objective = np.zeros(variables)  # milp minimises, so gains are negative
    objective[: len(leaves)] = -weights.reward * rewards
    costs = kv_costs(tree, nodes, weights.kv_cost)
    for node, index in node_index.items():
        objective[index] = weights.kv * costs[node]
    for index in cluster_index.values():
        objective[index] = -weights.coverage / len(clusters)

    rows: list[np.ndarray] = []
    lower: list[float] = []
    upper: list[float] = []

    def constrain(coefficients: Mapping[int, float], low: float, high: float) -> None:
        row = np.zeros(variables)
        for index, value in coefficients.items():
            row[index] += value
        rows.append(row)
        lower.append(low)
        upper.append(high)

    for leaf_index, leaf in enumerate(leaves):
        for node in tree.path(leaf.node):
            constrain({leaf_index: 1.0, node_index[node]: -1.0}, -np.inf, 0.0)
    for cluster, index in cluster_index.items():
        members = {i: -1.0 for i, leaf in enumerate(leaves) if leaf.cluster == cluster}
        constrain({index: 1.0, **members}, -np.inf, 0.0)
    constrain(dict.fromkeys(range(len(leaves)), 1.0), 1.0, float(min(width, len(leaves))))

    result = milp(
        objective,
        integrality=np.ones(variables),
        bounds=Bounds(0, 1),
        constraints=LinearConstraint(np.vstack(rows), lower, upper),
    )
    if result.x is None:
        raise RuntimeError(f"the ETS selection ILP found no solution: {result.message}")
    return {leaf.node for index, leaf in enumerate(leaves) if result.x[index] > 0.5}


def kv_costs(tree: StepTree, nodes: Sequence[int], how: KvCost) -> dict[int, float]:
    """What keeping each node costs: a flat share, the prompt counted as a node (`nodes`), or its token share."""
    if how == "nodes":
        return dict.fromkeys(nodes, 1.0 / (len(nodes) + 1))
    all_tokens = max(sum(tree.tokens[node] for node in nodes), 1)
    return {node: tree.tokens[node] / all_tokens for node in nodes}
