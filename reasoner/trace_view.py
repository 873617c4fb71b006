"""A solve's trace as one self-contained HTML page: the segment graph drawn as a layered DAG.

Python lays the graph out (a node's layer is its longest path from a root; it sits under the
parent on its deepest path, leaves side by side in depth-first order, a parent centred over
its children), marks the chosen path (the segments a strategy marked `chosen`, else its last
generated segment, with every ancestor) and embeds it all as JSON in a
`<script type="application/json">`, with `<`, `>` and `&` written as `\\u003c` etc. so no model
text can end the script or start markup. The page's own script and style
(`reasoner/static/trace_view.*`, ours, Apache-2.0) are inlined: nothing is fetched when it is
viewed, and model text reaches the page only through `textContent`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping
from importlib import resources
from typing import Any

import networkx as nx

from reasoner.errors import InputError
from reasoner.output_files import HTML_START
from reasoner.trace import EDGE_KINDS, SEGMENT_KINDS

FINAL_KINDS = frozenset({"answer", "step", "think", "latent", "child"})
"""Segments that can carry the final response, where no segment is marked `chosen`."""
SHOWN_ATTRIBUTES = ("phase", "model", "tokens", "score", "cached_prompt_tokens", "finish_reason", "request_id")
TotalValue = str | int | float | bool | None


def trace_page(graph: nx.DiGraph, title: str, totals: Mapping[str, TotalValue], default_model: str = "") -> str:
    """The page for `graph`; `totals` are shown on top in their order (a solve's usage and answer)."""
    data = {
        "title": title,
        "totals": [[name, _scalar(value)] for name, value in totals.items()],
        **layout(graph, default_model),
    }
    return (
        f'{HTML_START}<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>reasoner trace</title>\n"
        f"<style>\n{_asset('trace_view.css')}</style>\n</head>\n<body>\n"
        "<noscript>This page draws the trace with JavaScript; its data is in the script element below.</noscript>\n"
        f'<script type="application/json" id="trace-data">{embed_json(data)}</script>\n'
        f"<script>\n{_asset('trace_view.js')}</script>\n</body>\n</html>\n"
    )


def embed_json(data: Any) -> str:
    """JSON that is inert inside a `<script>` element: no `<`, `>` or `&` (nor any non-ASCII) appears raw."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def layout(graph: nx.DiGraph, default_model: str = "") -> dict[str, Any]:
    """Nodes with their layer (`y`), slot (`x`), what the page shows of them and whether they are on
    the chosen path; edges as `[source, target, kind, on_path]` by node index."""
    if not nx.is_directed_acyclic_graph(graph):
        raise InputError("the trace has a cycle; a solve's trace is a DAG of segments")
    order = _node_order(graph)
    index = {node: position for position, node in enumerate(order)}
    depth: dict[Hashable, int] = {}
    parent: dict[Hashable, Hashable | None] = {}
    for node in nx.lexicographical_topological_sort(graph, key=index.__getitem__):
        parents = sorted(graph.predecessors(node), key=lambda item: (-depth[item], index[item]))
        parent[node] = parents[0] if parents else None
        depth[node] = depth[parents[0]] + 1 if parents else 0
    slots = _slots(order, parent)
    on_path = chosen_path(graph)
    nodes = [_node_view(graph, node, depth[node], slots[node], node in on_path, default_model) for node in order]
    edges = [
        [index[source], index[target], _known(attrs.get("kind"), EDGE_KINDS), source in on_path and target in on_path]
        for source, target, attrs in graph.edges(data=True)
    ]
    return {"nodes": nodes, "edges": edges}


def _node_order(graph: nx.DiGraph) -> list[Hashable]:
    """Node ids in their natural order (the trace numbers segments as they start)."""
    try:
        return sorted(graph.nodes)
    except TypeError:
        return list(graph.nodes)


def _slots(order: list[Hashable], parent: Mapping[Hashable, Hashable | None]) -> dict[Hashable, float]:
    """Horizontal slots: leaves in depth-first order one apart, each parent centred over its children."""
    children: dict[Hashable | None, list[Hashable]] = {}
    for node in order:
        children.setdefault(parent[node], []).append(node)
    slots: dict[Hashable, float] = {}
    next_leaf = 0
    stack: list[tuple[Hashable, bool]] = [(root, False) for root in reversed(children.get(None, []))]
    while stack:  # iterative post-order: a chain of thousands of segments is no recursion limit
        node, expanded = stack.pop()
        below = children.get(node, [])
        if not below:
            slots[node] = next_leaf
            next_leaf += 1
        elif expanded:
            slots[node] = (slots[below[0]] + slots[below[-1]]) / 2
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(below))
    return slots


def chosen_path(graph: nx.DiGraph) -> set[Hashable]:
    """The segments the answer came from: those marked `chosen` (else the last generated one) and their ancestors."""
    chosen = [node for node, attrs in graph.nodes(data=True) if attrs.get("chosen") is True]
    if not chosen:
        final = [node for node, attrs in graph.nodes(data=True) if attrs.get("kind") in FINAL_KINDS]
        chosen = final[-1:]
    path = set(chosen)
    for node in chosen:
        path |= nx.ancestors(graph, node)
    return path


def _node_view(
    graph: nx.DiGraph, node: Hashable, depth: int, slot: float, on_path: bool, default_model: str
) -> dict[str, Any]:
    attrs = graph.nodes[node]
    shown = {name: _scalar(attrs.get(name)) for name in SHOWN_ATTRIBUTES if attrs.get(name) is not None}
    shown.setdefault("model", default_model or None)
    return {
        "id": str(node),
        "kind": _known(attrs.get("kind"), SEGMENT_KINDS),
        "x": slot,
        "y": depth,
        "path": on_path,
        "flags": _flags(attrs),
        "shown": shown,
        "other": {
            str(name): _scalar(value)
            for name, value in attrs.items()
            if name not in SHOWN_ATTRIBUTES and name not in ("kind", "text", "chosen")
        },
        "text": str(attrs.get("text", "")),
    }


def _flags(attrs: Mapping[str, Any]) -> list[str]:
    """What happened to the segment: aborted in the engine, pruned, cancelled, kept by a search, chosen."""
    flags = []
    if attrs.get("finish_reason") == "abort":
        flags.append("aborted")
    if attrs.get("pruned_at") is not None:
        flags.append("pruned")
    if attrs.get("cancelled") is True:
        flags.append("cancelled")
    if attrs.get("kept") is True:
        flags.append("kept")
    if attrs.get("chosen") is True:
        flags.append("chosen")
    return flags


def _known(value: object, known: frozenset[str]) -> str:
    """A kind the page styles, else `other` (a kind from a file is never put into markup as is)."""
    return value if isinstance(value, str) and value in known else "other"


def _scalar(value: object) -> str | int | float | bool | None:
    """A value JSON can hold and the page can show: numbers as they are, anything else as text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def _asset(name: str) -> str:
    return resources.files("reasoner").joinpath("static", name).read_text(encoding="utf-8")
