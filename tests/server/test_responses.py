"""What a served message says of a solve's trace: the reasoning behind its answer."""

from __future__ import annotations

from typing import Any

from reasoner.trace import Trace
from server.responses import reasoning_text


def segment(trace: Trace, kind: str, text: str = "", **links: Any) -> int:
    node = trace.add(kind, **links)
    trace.update(node, text=text)
    return node


def test_the_reasoning_is_the_thinking_on_the_path_to_the_last_answer() -> None:
    trace = Trace()
    first = segment(trace, "think", "a ")
    segment(trace, "think", "off the path ", parent=first, edge="spawn")
    second = segment(trace, "think", "b", parent=first)
    node = segment(trace, "answer", "7", parent=second)
    trace.update(node, finished_at=1.0)
    assert reasoning_text(trace.graph) == "a b"


def test_one_chain_of_thinking_without_an_answer_is_the_reasoning_it_streamed() -> None:
    # A budget that ends in the thinking writes no answer segment; the stream had sent the thinking.
    trace = Trace()
    first = segment(trace, "think", "a ")
    latent = segment(trace, "latent", parent=first)
    segment(trace, "think", "b", parent=latent)
    assert reasoning_text(trace.graph) == "a b"


def test_several_chains_without_an_answer_give_no_reasoning() -> None:
    trace = Trace()
    root = segment(trace, "think", "root ")
    segment(trace, "think", "one", parent=root, edge="spawn")
    segment(trace, "think", "two", parent=root, edge="spawn")
    assert reasoning_text(trace.graph) is None


def test_an_answer_without_thinking_has_no_reasoning() -> None:
    trace = Trace()
    segment(trace, "answer", "7")
    assert reasoning_text(trace.graph) is None
