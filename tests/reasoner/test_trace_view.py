"""The trace page without a browser: layout, chosen path, flags, escaping, size and speed at 3000 nodes."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import networkx as nx
import pytest

from reasoner import InputError
from reasoner.output_files import is_ours
from reasoner.trace import Trace
from reasoner.trace_view import embed_json, layout, trace_page
from tests.reasoner.trace_solves import PAYLOAD, scripted_solve

DATA = re.compile(r'<script type="application/json" id="trace-data">(.*?)</script>', re.S)


def page_data(page: str) -> dict[str, Any]:
    found = DATA.findall(page)
    assert len(found) == 1
    data: dict[str, Any] = json.loads(found[0])
    return data


def segment(trace: Trace, kind: str, parent: int | None = None, edge: str = "continue", **attrs: Any) -> int:
    node = trace.add(kind, parent=parent, edge=edge)
    trace.update(node, **attrs)
    return node


def join_graph() -> nx.DiGraph:
    """A parent spawns two children (one a chain of two) that join into its continuation; one is scored."""
    trace = Trace()
    root = segment(trace, "answer", text="split")
    first = trace.add("child", parent=root, edge="spawn")
    second = trace.add("child", parent=root, edge="spawn")
    deeper = trace.add("child", parent=second)
    final = trace.add("answer", parent=root)
    trace.link(first, final, "join")
    trace.link(deeper, final, "join")
    trace.add("eval", parent=first)
    return trace.graph


def test_a_segment_sits_one_layer_below_its_deepest_parent_and_parents_centre_over_children() -> None:
    nodes = layout(join_graph())["nodes"]
    assert [node["y"] for node in nodes] == [0, 1, 1, 2, 3, 2]
    # The join (4) hangs under the parent on its deepest path (3); leaves 5 and 4 take slots 0 and 1.
    assert [node["x"] for node in nodes] == [0.5, 0, 1, 1, 1, 0]


def test_the_chosen_path_is_the_marked_segment_and_its_ancestors() -> None:
    graph = join_graph()
    graph.nodes[3]["chosen"] = True
    view = layout(graph)
    assert [node["id"] for node in view["nodes"] if node["path"]] == ["0", "2", "3"]
    assert sorted((source, target) for source, target, _, on_path in view["edges"] if on_path) == [(0, 2), (2, 3)]


def test_without_a_mark_the_path_ends_at_the_last_generated_segment() -> None:
    view = layout(join_graph())
    assert [node["id"] for node in view["nodes"] if node["path"]] == ["0", "1", "2", "3", "4"]  # not the eval


def test_flags_say_what_happened_to_a_segment() -> None:
    trace = Trace()
    segment(trace, "answer", finish_reason="abort", pruned_at=32)
    segment(trace, "step", kept=True, score=0.25, cached_prompt_tokens=17, phase="answer", tokens=9)
    segment(trace, "answer", cancelled=True, finish_reason="abort", chosen=True)
    nodes = layout(trace.graph, default_model="tiny")["nodes"]
    assert [node["flags"] for node in nodes] == [["aborted", "pruned"], ["kept"], ["aborted", "cancelled", "chosen"]]
    assert nodes[1]["shown"] == {
        "phase": "answer",
        "tokens": 9,
        "score": 0.25,
        "cached_prompt_tokens": 17,
        "model": "tiny",
    }


def test_kinds_outside_the_known_ones_are_drawn_as_other() -> None:
    graph = nx.DiGraph()
    graph.add_node(0, kind='"><script>alert(1)</script>', text="x")
    graph.add_node(1, text="no kind")
    graph.add_edge(0, 1, kind="<b>")
    view = layout(graph)
    assert [node["kind"] for node in view["nodes"]] == ["other", "other"]
    assert view["edges"] == [[0, 1, "other", False]]


def test_a_trace_with_a_cycle_is_refused() -> None:
    graph = nx.DiGraph([(0, 1), (1, 0)])
    with pytest.raises(InputError, match="cycle"):
        layout(graph)


@pytest.mark.parametrize("text", [PAYLOAD, "</script><script>alert(1)</script>", "a & b < c > d \u2028 \udc80"])
def test_embedded_json_has_no_markup_characters_and_reads_back_the_same(text: str) -> None:
    embedded = embed_json({"text": text})
    assert not set("<>&") & set(embedded)
    assert embedded.isascii()
    assert json.loads(embedded) == {"text": text}


def test_model_text_reaches_the_page_only_inside_the_inert_data_element() -> None:
    solution = scripted_solve("tree_search")
    page = solution.trace_html()
    assert is_ours(page.encode()[:4096])
    assert page.count("<script") == 2  # the data element and the page's own script
    assert "PWNED" not in DATA.sub("", page)
    data = page_data(page)
    assert PAYLOAD in data["nodes"][-1]["text"] or any(PAYLOAD in node["text"] for node in data["nodes"])
    assert (
        'src="' not in page
        and "<link" not in page
        and "http" not in DATA.sub("", page).replace("http://www.w3.org/2000/svg", "")
    )


def test_the_page_carries_every_segment_the_totals_and_the_chosen_leaf() -> None:
    solution = scripted_solve("particle_filter")
    data = page_data(solution.trace_html())
    assert len(data["nodes"]) == solution.trace.number_of_nodes()
    assert len(data["edges"]) == solution.trace.number_of_edges()
    totals = dict(data["totals"])
    assert totals["generated_tokens"] == solution.usage.generated_tokens
    assert totals["cached_prompt_tokens"] == solution.usage.cached_prompt_tokens
    assert totals["answer"] == solution.answer and totals["segments"] == len(data["nodes"])
    chosen = [node["id"] for node in data["nodes"] if "chosen" in node["flags"]]
    marked = [str(node) for node, attrs in solution.trace.nodes(data=True) if attrs.get("chosen")]
    assert chosen == marked and len(chosen) == 1
    path = {node["id"] for node in data["nodes"] if node["path"]}
    assert path == {str(node) for node in nx.ancestors(solution.trace, int(chosen[0]))} | set(chosen)


def big_tree(steps: int, text_chars: int) -> nx.DiGraph:
    """A search-like tree: each step grows two steps below it (at most 600 per layer), each step scored by an eval."""
    trace = Trace()
    frontier = [segment(trace, "prompt", text="question")]
    made = 0
    while made < steps:
        grown = []
        for parent in (frontier * 2)[: steps - made]:
            step = segment(trace, "step", parent, "expand", tokens=40, text="x" * text_chars, score=0.5)
            segment(trace, "eval", step, tokens=1, text=" No", score=0.5)
            grown.append(step)
        made += len(grown)
        frontier = grown[:600]
    return trace.graph


def test_three_thousand_segments_make_a_page_fast_and_of_a_size_set_by_their_text() -> None:
    graph = big_tree(1500, text_chars=200)
    started = time.perf_counter()
    page = trace_page(graph, "big", {"segments": graph.number_of_nodes()})
    elapsed = time.perf_counter() - started
    assert graph.number_of_nodes() == 3001
    assert elapsed < 3.0, f"{elapsed:.2f} s for 3000 segments"
    overhead = len(page) - sum(len(attrs["text"]) for _, attrs in graph.nodes(data=True))
    assert overhead / graph.number_of_nodes() < 400, f"{overhead} bytes beyond the text"
    assert len(page_data(page)["nodes"]) == graph.number_of_nodes()
