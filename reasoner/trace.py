"""Traces: a networkx DiGraph of generation segments.

Nodes are segments (`kind`: think, answer, latent, eval, child, step, ...) with their token
count, text, scores and timestamps; edges say how segments relate (`continue`, `spawn`,
`join`, `expand`, and `depends`: a result a later segment's prompt used, as between the nodes
of `graph_of_thoughts`). A segment whose prompt extends another's has an edge from it, so
shared prefixes are visible as shared ancestors.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import networkx as nx

SEGMENT_KINDS = frozenset({"prompt", "think", "answer", "latent", "eval", "child", "step", "estimate"})
EDGE_KINDS = frozenset({"continue", "spawn", "join", "expand", "depends"})


class Trace:
    """Builds one solve's trace graph; node ids are consecutive integers from 0."""

    def __init__(self) -> None:
        self.graph: nx.DiGraph = nx.DiGraph()

    def add(self, kind: str, *, parent: int | None = None, edge: str = "continue", **attrs: Any) -> int:
        """Add a segment, linked from `parent` by an `edge` of the given kind; return its id."""
        if kind not in SEGMENT_KINDS:
            raise ValueError(f"unknown segment kind {kind!r}; known: {sorted(SEGMENT_KINDS)}")
        node = self.graph.number_of_nodes()
        self.graph.add_node(node, kind=kind, tokens=0, text="", **attrs)
        if parent is not None:
            self.link(parent, node, edge)
        return node

    def link(self, source: int, target: int, edge: str) -> None:
        if edge not in EDGE_KINDS:
            raise ValueError(f"unknown edge kind {edge!r}; known: {sorted(EDGE_KINDS)}")
        self.graph.add_edge(source, target, kind=edge)

    def update(self, node: int, **attrs: Any) -> None:
        self.graph.nodes[node].update(attrs)


def trace_to_json(graph: nx.DiGraph) -> dict[str, Any]:
    """The graph as node-link JSON (plain dicts and lists)."""
    return nx.node_link_data(graph, edges="edges")


def trace_from_json(data: dict[str, Any]) -> nx.DiGraph:
    """Rebuild a graph written by `trace_to_json`."""
    return nx.node_link_graph(data, directed=True, edges="edges")


def trace_summary(graph: nx.DiGraph) -> dict[str, Any]:
    """Counts per segment kind, tokens per kind, and edge counts per kind."""
    segments: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    for _, attrs in graph.nodes(data=True):
        segments[attrs["kind"]] += 1
        tokens[attrs["kind"]] += int(attrs.get("tokens", 0))
    edges = Counter(attrs["kind"] for _, _, attrs in graph.edges(data=True))
    return {"segments": dict(segments), "tokens": dict(tokens), "edges": dict(edges)}
