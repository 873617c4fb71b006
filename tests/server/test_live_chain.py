"""Live deltas of a single-chain solve: whatever arrives in whatever pieces, they add up to the final message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reasoner import Budget
from reasoner.events import SolveEvent
from reasoner.profiles import get_profile
from server.live_chain import ContentShape, LiveChain, content_shape, settled_prefix
from server.responses import cut_at_stops
from server.selection import SolvePlan

PROFILE = get_profile("smollm2")
ELASTIC = ContentShape(lead=PROFILE.answer_lead_in, close=PROFILE.think_close, strip=True)
PIECES = st.sampled_from(["5", " ", "\n", "</", "think", ">", "</think>", "Fin", "al", " answer", "ST", "OP", "x"])


def event(phase: str, kind: str, text: str) -> SolveEvent:
    return SolveEvent("s0/r0", phase, kind, text, 1, False, None, 0, 0, 0)


def kept(phase: str, kind: str, text: str) -> SolveEvent:
    return SolveEvent("", phase, kind, text, 0, False, None, 0, 0, 0, kept=True)


def elastic_content(answer: str, stops: tuple[str, ...]) -> str:
    """The content `elastic` answers with (strategies/elastic.py), cut at the stops as the server cuts it."""
    reply = PROFILE.answer_lead_in + answer.split(PROFILE.think_close, 1)[0]
    return cut_at_stops(reply.strip(), stops)


@given(
    chunks=st.lists(st.lists(PIECES, max_size=3).map("".join), max_size=12),
    stops=st.lists(st.sampled_from(["STOP", "5\n", "\n\n", "answer:", "x5"]), max_size=2).map(tuple),
)
def test_released_content_is_always_a_prefix_of_the_final_and_the_rest_completes_it(
    chunks: list[str], stops: tuple[str, ...]
) -> None:
    live = LiveChain(ELASTIC, stops)
    released = ""
    for index, chunk in enumerate(chunks):
        live.add(event("answer", "answer", chunk))
        released += live.take_content()
        assert elastic_content("".join(chunks[: index + 1]), stops).startswith(released) or not released
        assert elastic_content("".join(chunks), stops).startswith(released)
    final = elastic_content("".join(chunks), stops)
    _, rest, consistent = live.rest("", final)
    assert consistent and released + rest == final


def test_thinking_goes_to_the_reasoning_as_it_comes_and_other_requests_go_nowhere() -> None:
    live = LiveChain(ELASTIC, ())
    live.add(event("thinking", "think", "Three plus"))
    assert live.take_reasoning() == "Three plus" and live.take_content() == ""
    live.add(event("thinking", "think", " four."))
    live.add(event("thinking", "eval", "ignored"))
    assert live.take_reasoning() == " four."
    live.add(event("answer", "answer", " 7 "))
    assert live.take_content() == "Final answer: 7"
    assert live.rest("Three plus four.", "Final answer: 7") == ("", "", True)


def test_a_tail_that_may_become_a_marker_waits_and_a_marker_cuts() -> None:
    assert settled_prefix("Final answer: 7 </thi", ("</think>",)) == "Final answer: 7 "
    assert settled_prefix("7 </think> more", ("</think>",)) == "7 "
    assert settled_prefix("abc", ("xcd", "c")) == "ab" and settled_prefix("abc", ("bcd", "c")) == "a"
    assert settled_prefix("abc", ()) == "abc"


def test_only_single_chain_strategies_stream_live() -> None:
    def plan(strategy: str, **options: object) -> SolvePlan:
        return SolvePlan("q", strategy, Budget(tokens=64), options)

    assert content_shape(plan("direct"), PROFILE) == ContentShape()
    assert content_shape(plan("mode", mode="off"), PROFILE) == ContentShape()
    assert content_shape(plan("elastic"), PROFILE) == ELASTIC == content_shape(plan("mode", mode="low"), PROFILE)
    assert content_shape(plan("latent_switch"), PROFILE) == LATENT_SWITCH
    for strategy in ("self_consistency", "tree_search", "parallel"):
        assert content_shape(plan(strategy), PROFILE) is None


LATENT_SWITCH = ContentShape(lead=PROFILE.answer_lead_in, strip=True, kept=True)


def test_latent_switch_streams_what_it_keeps_never_its_requests_raw_output() -> None:
    live = LiveChain(LATENT_SWITCH, ())
    live.add(event("thinking", "step", " Three plus"))
    live.add(kept("thinking", "think", " Three"))
    live.add(kept("thinking", "latent", ""))
    assert live.take_reasoning() == " Three" and live.take_content() == ""
    live.add(event("answer", "answer", " 7"))
    assert live.take_content() == ""
    live.add(kept("answer", "answer", " 7"))
    assert live.take_content() == "Final answer: 7"
    assert live.rest(" Three", "Final answer: 7") == ("", "", True)


def test_a_single_chain_strategy_takes_no_kept_text_but_its_requests_output() -> None:
    live = LiveChain(ELASTIC, ())
    live.add(kept("thinking", "think", "kept elsewhere"))
    live.add(event("thinking", "think", "Three plus four."))
    assert live.take_reasoning() == "Three plus four."
