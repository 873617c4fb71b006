from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasoner import Budget, Reasoner, Solution, StrategyError
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend, forced_lengths
from reasoner.trace import trace_to_json
from strategies.graph_of_thoughts import GraphOfThoughts
from strategies.graph_steps import parse_decomposition, read_complex
from tests.scripted_runs import reasoner_with, records

QUESTION = "What is 2 + 3 + 3 + 4?"
DIAMOND = "1. add 2 and 3\n2. add 3 and 4\n3. add the two sums (uses 1, 2)"


def user_turn(prompt: str) -> str:
    return prompt.rsplit("<|user|>", 1)[1].split("<|assistant|>", 1)[0]


def step_of(turn: str) -> str:
    return turn.rsplit("Step:", 1)[1] if "Step:" in turn else turn.rsplit("state its result:", 1)[-1]


def scripted(
    first: str = DIAMOND,
    nested: str = "1. sub a\n2. sub b",
    follow_up: str = "DONE",
    complex_when: Callable[[str], bool] = lambda step: False,
    answer: str = "Some work.\n\nFinal answer: 5",
) -> Callable[[str], str]:
    """Decompositions, checks, step answers and syntheses, told apart by what the prompt asks."""

    def respond(prompt: str) -> str:
        turn = user_turn(prompt)
        if turn.lstrip().startswith("Break the problem"):
            return nested if "larger problem" in turn else first
        if "Steps solved so far" in turn:
            return follow_up
        if "Answer Yes or No" in turn:
            return "No." if complex_when(step_of(turn)) else "Yes."
        if "Solve only this step" in turn:
            return answer
        return "Adding the results.\n\nFinal answer: 12"

    return respond


def solve(respond: Callable[[str], str], budget: int = 4000, delay_s: float = 0.0, **options: object) -> Solution:
    return reasoner_with(respond, delay_s).solve(QUESTION, budget=budget, strategy="graph_of_thoughts", **options)


def graph_nodes(solution: Solution) -> dict[int, dict]:
    """The AGoT nodes of the trace (segments that carry a step's result), by trace id."""
    return {node: attrs for node, attrs in solution.trace.nodes(data=True) if "step" in attrs and "answer" in attrs}


def by_question(solution: Solution) -> dict[str, int]:
    return {attrs["question"]: node for node, attrs in graph_nodes(solution).items()}


def edges(solution: Solution, kind: str) -> set[tuple[int, int]]:
    return {(source, target) for source, target, attrs in solution.trace.edges(data=True) if attrs["kind"] == kind}


# The parser


def test_parse_reads_numbered_steps_and_what_each_uses() -> None:
    decomposition = parse_decomposition(DIAMOND, first_label=1, problem=QUESTION, cut=False)
    assert [(step.label, step.question, step.uses) for step in decomposition.steps] == [
        (1, "add 2 and 3", ()),
        (2, "add 3 and 4", ()),
        (3, "add the two sums", (1, 2)),
    ]


def test_parse_drops_references_to_itself_later_steps_and_nonsense() -> None:
    text = "Here are the steps:\n1. a (uses 1, 2)\n2. b [needs: 1, 9]\n3. c (uses zero)\nnot a step"
    decomposition = parse_decomposition(text, first_label=1, problem=QUESTION, cut=False)
    assert [(step.question, step.uses) for step in decomposition.steps] == [("a", ()), ("b", (1,)), ("c", ())]


def test_parse_survives_a_reference_too_long_for_an_integer() -> None:
    decomposition = parse_decomposition(f"1. a\n2. b (uses {'9' * 5000}, 1)", first_label=1, problem="q", cut=False)
    assert [step.uses for step in decomposition.steps] == [(), (1,)]


def test_parse_labels_follow_up_steps_from_the_first_label_whatever_the_model_numbered() -> None:
    decomposition = parse_decomposition(
        "1. double it (uses 2)\n- add one (uses 3)", first_label=3, problem="q", cut=False
    )
    assert [(step.label, step.uses) for step in decomposition.steps] == [(3, (2,)), (4, (3,))]


def test_parse_drops_a_line_cut_by_the_token_cap_repeats_and_the_problem_itself() -> None:
    text = f"1. {QUESTION}\n2. add 2 and 3\n3. Add 2 and 3.\n4. add 3 and"
    decomposition = parse_decomposition(text, first_label=1, problem=QUESTION, cut=True)
    assert [step.question for step in decomposition.steps] == ["add 2 and 3"]


@pytest.mark.parametrize("text", ["", "The answer is 12.", "1.\n2. ...\n- ?!", "\x00\x01 (uses 1)", "42"])
def test_text_without_steps_is_malformed(text: str) -> None:
    assert parse_decomposition(text, first_label=1, problem=QUESTION, cut=False).malformed


def test_done_ends_the_graph_and_is_not_malformed() -> None:
    decomposition = parse_decomposition("All steps are solved.\nDONE.", first_label=4, problem="q", cut=False)
    assert decomposition.done and not decomposition.steps and not decomposition.malformed


@pytest.mark.parametrize(("text", "expected"), [("No.", True), (" yes, directly", False), ("It depends", False)])
def test_a_check_is_complex_only_when_it_says_no(text: str, expected: bool) -> None:
    assert read_complex(text) is expected


# The graph


def test_a_scripted_decomposition_gives_its_dag_in_the_trace() -> None:
    solution = solve(scripted(), max_depth=0)
    nodes, ids = graph_nodes(solution), by_question(solution)
    assert set(ids) == {"add 2 and 3", "add 3 and 4", "add the two sums"}
    first, second, both = ids["add 2 and 3"], ids["add 3 and 4"], ids["add the two sums"]
    assert edges(solution, "depends") == {(first, both), (second, both)}
    assert [nodes[n]["layer"] for n in (first, second, both)] == [0, 0, 1]
    assert all(
        nodes[n]["depth"] == 0 and nodes[n]["expanded"] is False and nodes[n]["answer"] == "5" for n in ids.values()
    )
    final = max(solution.trace.nodes)
    assert solution.trace.nodes[final]["role"] == "synthesise"
    assert {source for source, target in edges(solution, "join") if target == final} == set(ids.values())
    assert solution.answer == "12"
    assert solution.metrics["nodes"] == 3 and solution.metrics["layers"] == 2
    assert nx.is_directed_acyclic_graph(solution.trace)
    json.dumps(trace_to_json(solution.trace))


def test_a_step_sees_the_results_it_uses_and_the_synthesis_sees_every_result() -> None:
    reasoner = reasoner_with(scripted())
    reasoner.solve(QUESTION, budget=4000, strategy="graph_of_thoughts", max_depth=0)
    turns = [user_turn(record.prompt_text) for record in records(reasoner)]
    last_step = next(turn for turn in turns if turn.endswith("state its result: add the two sums\n"))
    assert "- add 2 and 3: 5\n- add 3 and 4: 5" in last_step
    assert "1. add 2 and 3 -> 5\n2. add 3 and 4 -> 5\n3. add the two sums -> 5" in turns[-1]
    assert "Some work" not in turns[-1]


def test_requests_start_only_after_the_results_they_use() -> None:
    solution = solve(scripted(), delay_s=0.002, max_depth=0)
    trace = solution.trace
    assert edges(solution, "depends")
    for source, target in edges(solution, "depends") | edges(solution, "join"):
        assert trace.nodes[source]["finished_at"] <= trace.nodes[target]["started_at"]


def test_independent_nodes_of_a_layer_decode_at_the_same_time() -> None:
    solution = solve(scripted(answer="a b c d e f g h Final answer: 5"), delay_s=0.002, max_depth=0)
    ids = by_question(solution)
    first, second = (solution.trace.nodes[ids[q]] for q in ("add 2 and 3", "add 3 and 4"))
    assert max(first["started_at"], second["started_at"]) < min(first["finished_at"], second["finished_at"])
    assert solution.metrics["concurrent_width"] == 2


def test_a_complex_node_becomes_a_nested_graph_whose_synthesis_is_its_answer() -> None:
    solution = solve(scripted(complex_when=lambda step: "two sums" in step))
    nodes, ids = graph_nodes(solution), by_question(solution)
    expanded = ids["add the two sums"]
    assert nodes[expanded]["expanded"] is True and nodes[expanded]["role"] == "synthesise"
    assert nodes[expanded]["depth"] == 0 and nodes[expanded]["answer"] == "12"
    inner = [ids["sub a"], ids["sub b"]]
    assert all(nodes[n]["depth"] == 1 for n in inner)
    assert {(n, expanded) for n in inner} <= edges(solution, "join")
    assert {(ids["add 2 and 3"], expanded), (ids["add 3 and 4"], expanded)} <= edges(solution, "depends")
    (check, nested_decomposition), *_ = edges(solution, "expand")
    assert solution.trace.nodes[check]["complex"] is True
    assert solution.trace.nodes[nested_decomposition]["role"] == "decompose"
    assert solution.metrics["expanded_nodes"] == 1 and solution.metrics["depth_reached"] == 1
    assert nx.is_directed_acyclic_graph(solution.trace)


def test_a_simple_node_is_answered_directly_after_its_check() -> None:
    solution = solve(scripted())
    checks = [attrs for _, attrs in solution.trace.nodes(data=True) if attrs.get("role") == "check"]
    assert len(checks) == 3 and not any(check["complex"] for check in checks)
    assert solution.metrics["expanded_nodes"] == 0 and solution.metrics["depth_reached"] == 0


@pytest.mark.parametrize("max_depth", [0, 1, 2])
def test_nesting_stops_at_the_depth_bound(max_depth: int) -> None:
    solution = solve(scripted(complex_when=lambda step: True), budget=60_000, max_depth=max_depth, max_layers=3)
    depths = [attrs["depth"] for attrs in graph_nodes(solution).values()]
    assert max(depths) == max_depth
    assert solution.metrics["depth_reached"] == max_depth
    checked = [attrs["depth"] for _, attrs in solution.trace.nodes(data=True) if attrs.get("role") == "check"]
    assert all(depth < max_depth for depth in checked)


def test_a_nested_graph_has_fewer_layers_by_its_depth() -> None:
    solution = solve(scripted(nested="1. sub a\n2. sub b (uses 1)", complex_when=lambda step: "two sums" in step))
    assert "sub a" in by_question(solution) and "sub b" not in by_question(solution)
    assert solution.metrics["nodes_dropped"] == 1


def test_steps_past_the_nodes_per_layer_bound_are_dropped() -> None:
    first = "1. a\n2. b\n3. c\n4. d\n5. e"
    solution = solve(scripted(first=first), max_depth=0, max_nodes=2)
    assert set(by_question(solution)) == {"a", "b"}
    assert solution.metrics["nodes_dropped"] == 3


def test_steps_past_the_layer_bound_and_steps_using_them_are_dropped() -> None:
    first = "1. a\n2. b (uses 1)\n3. c (uses 2)\n4. d"
    solution = solve(scripted(first=first), max_depth=0, max_layers=2)
    assert set(by_question(solution)) == {"a", "b", "d"}
    assert solution.metrics["layers"] == 2


def test_a_follow_up_decomposition_adds_a_layer_that_uses_earlier_results() -> None:
    follow_ups = iter(["3. double the first sum (uses 1)", "DONE"])
    base = scripted(first="1. add 2 and 3\n2. add 3 and 4")

    def respond(prompt: str) -> str:
        turn = user_turn(prompt)
        if "Steps solved so far" in turn:
            assert "1. add 2 and 3 -> 5\n2. add 3 and 4 -> 5" in turn
            return next(follow_ups)
        return base(prompt)

    solution = solve(respond, max_depth=0, max_layers=3)
    ids = by_question(solution)
    assert edges(solution, "depends") == {(ids["add 2 and 3"], ids["double the first sum"])}
    assert solution.metrics["layers"] == 2
    assert solution.metrics["stopped_by"] == "done"


def test_a_garbage_decomposition_answers_the_question_directly() -> None:
    reasoner = reasoner_with(scripted(first="The answer is probably 12 or so.\n\n%%%\n"))
    solution = reasoner.solve(QUESTION, budget=4000, strategy="graph_of_thoughts")
    _, answer = records(reasoner)
    direct = get_profile("smollm2").build_prompt(reasoner.backend.tokenizer(), QUESTION, thinking=False)
    assert answer.prompt_text == direct
    assert solution.answer == "12"
    assert solution.metrics["decompositions_malformed"] == 1 and solution.metrics["stopped_by"] == "malformed"
    assert solution.metrics["nodes"] == 0


def test_a_garbage_nested_decomposition_answers_the_node_directly() -> None:
    solution = solve(scripted(nested="no idea ))) (uses", complex_when=lambda step: "two sums" in step))
    node = graph_nodes(solution)[by_question(solution)["add the two sums"]]
    assert node["role"] == "answer" and node["expanded"] is False
    assert solution.metrics["decompositions_malformed"] == 1
    assert solution.metrics["depth_reached"] == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.text(max_size=200), nested=st.text(max_size=120), follow_up=st.text(max_size=120))
def test_any_text_as_a_decomposition_never_raises(first: str, nested: str, follow_up: str) -> None:
    solution = solve(scripted(first=first, nested=nested, follow_up=follow_up, complex_when=lambda step: True))
    assert solution.text
    assert nx.is_directed_acyclic_graph(solution.trace)


# The budget


def test_expansion_stops_when_the_budget_would_not_pay_for_another_layer() -> None:
    reasoner = reasoner_with(scripted(first="1. add 2 and 3\n2. add 3 and 4", answer="w " * 40))
    options = {"max_depth": 0, "decompose_tokens": 20, "answer_tokens": 30, "synthesis_tokens": 25, "max_layers": 3}
    solution = reasoner.solve(QUESTION, budget=140, strategy="graph_of_thoughts", **options)
    # 25 held for the synthesis; 20 decompose + 2 x 30 answers leave 35 < 20 + 30 for another layer.
    assert solution.metrics["layers"] == 1 and solution.metrics["stopped_by"] == "budget"
    assert not any("Steps solved so far" in record.prompt_text for record in records(reasoner))
    assert records(reasoner)[-1].sampling.max_tokens >= 25
    assert solution.usage.generated_tokens <= 140


def test_a_layer_keeps_only_the_nodes_its_share_pays_for() -> None:
    options = {"max_depth": 0, "decompose_tokens": 20, "answer_tokens": 30, "synthesis_tokens": 25}
    solution = solve(scripted(first="1. a\n2. b\n3. c"), budget=110, **options)
    assert len(graph_nodes(solution)) == 2 and solution.metrics["nodes_dropped"] == 1


def test_the_final_synthesis_may_use_everything_the_graph_left() -> None:
    reasoner = reasoner_with(scripted())
    solution = reasoner.solve(QUESTION, budget=4000, strategy="graph_of_thoughts", synthesis_tokens=16)
    *graph_requests, synthesis = records(reasoner)
    assert synthesis.sampling.max_tokens == 4000 - sum(record.generated_tokens for record in graph_requests)
    assert solution.usage.generated_tokens <= 4000


def test_check_tokens_do_not_apply_without_nesting() -> None:
    with pytest.raises(StrategyError, match="check_tokens.*max_depth=0"):
        solve(scripted(), max_depth=0, check_tokens=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tokens=st.integers(1, 900),
    max_depth=st.integers(0, 2),
    max_layers=st.integers(1, 3),
    max_nodes=st.integers(1, 3),
    answer_words=st.integers(0, 60),
    synthesis_tokens=st.integers(1, 80),
    complex_mask=st.integers(0, 7),
)
def test_the_graph_never_spends_past_the_budget_and_the_synthesis_keeps_its_reserve(
    tokens: int,
    max_depth: int,
    max_layers: int,
    max_nodes: int,
    answer_words: int,
    synthesis_tokens: int,
    complex_mask: int,
) -> None:
    respond = scripted(
        first="1. a\n2. b (uses 1)\n3. c\n4. d (uses 2, 3)",
        nested="1. e\n2. f (uses 1)",
        follow_up="5. g (uses 1)",
        complex_when=lambda step: bool(complex_mask & (1 << (len(step) % 3))),
        answer="w " * answer_words + "Final answer: 5",
    )
    options = GraphOfThoughts.Options(
        max_depth=max_depth,
        max_layers=max_layers,
        max_nodes=max_nodes,
        decompose_tokens=24,
        answer_tokens=40,
        synthesis_tokens=synthesis_tokens,
    )

    async def scenario() -> tuple[Session, ScriptedBackend]:
        backend = ScriptedBackend(respond, delay_s=0.0001)
        await backend.start()
        session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=tokens))
        await GraphOfThoughts(options).run(session, QUESTION)
        return session, backend

    session, backend = asyncio.run(scenario())
    assert session.ledger.generated_tokens <= tokens
    assert session.ledger.reserved_tokens == 0
    assert backend.requests[-1].sampling.max_tokens >= min(synthesis_tokens, tokens)
    assert nx.is_directed_acyclic_graph(session.trace.graph)
    depths = [attrs["depth"] for _, attrs in session.trace.graph.nodes(data=True) if "depth" in attrs]
    assert max(depths, default=0) <= max_depth


# The real engine


@pytest.mark.engine
def test_on_the_engine_the_budget_holds_and_the_trace_is_a_dag(engine_reasoner: Reasoner) -> None:
    forced = forced_lengths(engine_reasoner)
    options = {"decompose_tokens": 24, "answer_tokens": 12, "check_tokens": 2, "synthesis_tokens": 16}
    solution = forced.solve(QUESTION, budget=120, strategy="graph_of_thoughts", **options)
    assert solution.usage.generated_tokens <= 120
    assert nx.is_directed_acyclic_graph(solution.trace)
    assert solution.trace.nodes[max(solution.trace.nodes)]["role"] == "synthesise"
    json.dumps(trace_to_json(solution.trace))
