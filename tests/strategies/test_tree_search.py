from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import Reasoner, Session, Solution, StrategyError
from reasoner.extract import extract_math
from reasoner.testing import ScriptedBackend, ScriptedToken
from strategies.scoring import SELF_EVAL_QUESTION, FunctionScorer
from strategies.tree_search import TreeSearchOptions
from strategies.tree_selection import EtsWeights
from tests.forced_runs import STORY, TraceOrder, forced

Responder = Callable[[str], "str | list[ScriptedToken]"]


def stepper(final_after: int | None, answer: Callable[[int], str] = lambda index: "5") -> Responder:
    """One step per request: `Step n idea i.` until `final_after` steps, then `Final answer: ...`.

    `i` counts requests, so siblings differ; self-evaluation prompts get a confident "No".
    """
    counter = itertools.count()

    def respond(prompt: str) -> str | list[ScriptedToken]:
        if SELF_EVAL_QUESTION in prompt:
            return [ScriptedToken("No", logprobs={"No": -0.1, "Yes": -2.5})]
        done = prompt.split("<|assistant|>", 1)[1].count("Step ")
        index = next(counter)
        if final_after is not None and done >= final_after:
            return f"Final answer: {answer(index)}"
        return f"Step {done + 1} idea {index}: 3 + 4 = 7.\n\n"

    return respond


def reasoner_for(responder: Responder) -> Reasoner:
    return Reasoner(backend=ScriptedBackend(responder), profile="smollm2")


def constant(value: float) -> FunctionScorer:
    return FunctionScorer(lambda question, response: value, name="constant")


def number(solution: Solution, metric: str) -> float:
    value = solution.metrics[metric]
    assert isinstance(value, (int, float))
    return value


def step_scores(graph: nx.DiGraph) -> list[float]:
    return [attrs["score"] for _, attrs in graph.nodes(data=True) if attrs["kind"] == "step"]


def kept_tree_kv(graph: nx.DiGraph) -> tuple[int, int]:
    """(distinct, unshared) tokens of the leaves kept each round, the most over rounds, read off the trace.

    Distinct: the prompt plus every step some kept leaf's path holds, once. Unshared: each kept
    leaf's prompt and path on its own. With nothing kept, both are the prompt.
    """
    prompt = next(attrs["prompt_tokens"] for _, attrs in graph.nodes(data=True) if attrs["kind"] == "prompt")
    steps = {node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "step"}

    def path(node: int) -> set[int]:
        return ({node} | nx.ancestors(graph, node)) & steps

    def tokens(nodes: set[int]) -> int:
        return sum(graph.nodes[node]["tokens"] for node in nodes)

    distinct = unshared = prompt
    for depth in {graph.nodes[node]["depth"] for node in steps}:
        kept = [node for node in steps if graph.nodes[node]["depth"] == depth and graph.nodes[node].get("kept")]
        if kept:
            distinct = max(distinct, prompt + tokens(set().union(*(path(node) for node in kept))))
            unshared = max(unshared, sum(prompt + tokens(path(node)) for node in kept))
    return distinct, unshared


async def test_answer_is_the_score_weighted_vote_not_the_majority() -> None:
    reasoner = reasoner_for(stepper(final_after=1, answer=lambda index: "7" if index % 3 == 0 else "5"))
    scorer = FunctionScorer(lambda question, response: 0.9 if "answer: 7" in response else 0.1, name="likes7")
    solution = await reasoner.asolve(
        "q", 500, "tree_search", selection="beam", width=3, expand=1, max_depth=4, scorer=scorer
    )
    assert solution.metrics["finished_paths"] == 3
    assert solution.answer == "7"
    assert solution.text.endswith("Final answer: 7")


async def test_trace_is_the_search_tree_and_its_tokens_agree_with_usage() -> None:
    reasoner = reasoner_for(stepper(final_after=2))
    solution = await reasoner.asolve("q", 500, "tree_search", selection="beam", width=2, expand=2, scorer=constant(0.5))
    graph = solution.trace
    steps = [node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "step"]
    (root,) = [node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "prompt"]
    assert len(steps) == solution.metrics["nodes"] == solution.usage.requests
    assert sum(attrs["tokens"] for _, attrs in graph.nodes(data=True)) == solution.usage.generated_tokens
    assert all(graph.edges[edge]["kind"] == "expand" for edge in graph.edges)
    assert len(list(graph.successors(root))) == 2
    assert all(graph.nodes[node]["score"] == 0.5 for node in steps)
    assert solution.metrics["rounds"] == 3


async def test_each_child_prompt_is_the_prompt_ids_then_its_ancestors_step_ids() -> None:
    backend = ScriptedBackend(stepper(final_after=None))
    reasoner = Reasoner(backend=backend, profile="smollm2")
    solution = await reasoner.asolve(
        "q", 500, "tree_search", selection="beam", width=2, expand=2, max_depth=3, scorer=constant(0.5)
    )
    by_id = {record.request_id: record for record in backend.requests}
    graph = solution.trace
    for node, attrs in graph.nodes(data=True):
        if attrs["kind"] != "step":
            continue
        (parent,) = graph.predecessors(node)
        record = by_id[attrs["request_id"]]
        if graph.nodes[parent]["kind"] == "prompt":
            assert record.prompt_text.endswith("<|assistant|>")
        else:
            parent_record = by_id[graph.nodes[parent]["request_id"]]
            assert record.prompt_text == parent_record.prompt_text + parent_record.output_text
    assert number(solution, "prefix_cache_hit_rate") > 0.5


async def test_default_self_eval_scorer_scores_each_path_on_its_own_token_ids() -> None:
    backend = ScriptedBackend(stepper(final_after=1))
    reasoner = Reasoner(backend=backend, profile="smollm2")
    solution = await reasoner.asolve("q", 500, "tree_search", width=2)
    graph = solution.trace
    evals = [node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "eval"]
    steps = [node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "step"]
    assert len(evals) == len(steps)
    assert all(graph.nodes[step]["score"] == pytest.approx(1 / (1 + math.exp(-2.4))) for step in steps)
    assert solution.answer == "5"


async def test_a_scorer_that_raises_or_returns_nan_scores_lowest_and_the_search_goes_on() -> None:
    class Flaky:
        name = "flaky"
        calls = itertools.count()

        async def score(self, session: Session, question: str, response: str, *, parent: int | None = None) -> float:
            call = next(self.calls)
            if call % 3 == 0:
                raise ValueError("grader crashed")
            return math.nan if call % 3 == 1 else 0.8

    reasoner = reasoner_for(stepper(final_after=2))
    solution = await reasoner.asolve("q", 500, "tree_search", selection="ets", width=2, scorer=Flaky())
    scores = step_scores(solution.trace)
    assert solution.metrics["scorer_errors"] == scores.count(0.0) > 0
    assert scores.count(0.8) > 0
    assert solution.answer == "5"


async def test_search_ends_when_every_path_has_finished() -> None:
    reasoner = reasoner_for(stepper(final_after=0))
    solution = await reasoner.asolve("q", 500, "tree_search", width=3, scorer=constant(0.5))
    assert solution.metrics["rounds"] == 1
    assert solution.metrics["stopped_by"] == "frontier"
    assert solution.answer == "5"


async def test_search_stops_at_max_depth_and_answers_from_the_best_partial_path() -> None:
    reasoner = reasoner_for(stepper(final_after=None))
    scorer = FunctionScorer(lambda question, response: 0.9 if "idea 3:" in response else 0.2, name="likes3")
    solution = await reasoner.asolve(
        "q", 1000, "tree_search", selection="beam", width=2, expand=2, max_depth=2, scorer=scorer
    )
    assert solution.metrics["rounds"] == 2
    assert solution.metrics["stopped_by"] == "depth"
    assert solution.metrics["finished_paths"] == 0
    assert "idea 3:" in solution.text
    assert solution.answer == "7"


async def test_exhausted_budget_ends_the_search_with_the_best_partial_answer() -> None:
    reasoner = reasoner_for(stepper(final_after=None))
    solution = await reasoner.asolve("q", 30, "tree_search", width=2, step_tokens=8, scorer=constant(0.5))
    assert solution.metrics["stopped_by"] == "budget"
    assert solution.usage.generated_tokens <= 30
    assert solution.text
    assert solution.answer == extract_math(solution.text)


async def test_kept_tree_counts_shared_prefix_tokens_once() -> None:
    reasoner = reasoner_for(stepper(final_after=None))
    solution = await reasoner.asolve(
        "q", 1000, "tree_search", selection="beam", width=4, expand=2, max_depth=3, scorer=constant(0.5)
    )
    prompt_tokens = solution.trace.nodes[0]["prompt_tokens"]
    distinct, unshared = number(solution, "kv_peak_distinct_tokens"), number(solution, "kv_peak_unshared_tokens")
    assert prompt_tokens < distinct < unshared
    assert unshared - distinct >= prompt_tokens


@pytest.mark.parametrize("selection", ["ets", "beam", "rebase"])
async def test_each_round_makes_width_minus_finished_new_steps(selection: str) -> None:
    counter = itertools.count()

    def respond(prompt: str) -> str:
        done = prompt.split("<|assistant|>", 1)[1].count("Step ")
        index = next(counter)
        if done >= 1 and index % 2 == 0:
            return "Final answer: 7"
        return f"Step {done + 1} idea {index}: 3 + 4 = 7.\n\n"

    solution = await reasoner_for(respond).asolve(
        "q", 2000, "tree_search", selection=selection, width=4, max_depth=6, scorer=constant(0.5)
    )
    graph = solution.trace
    depths = [attrs["depth"] for _, attrs in graph.nodes(data=True) if attrs["kind"] == "step"]
    per_round = [depths.count(depth) for depth in range(1, max(depths) + 1)]
    finished_before = [0]
    for depth in range(1, len(per_round)):
        finished_before.append(
            sum(
                1
                for _, attrs in graph.nodes(data=True)
                if attrs["kind"] == "step" and attrs["depth"] <= depth and attrs["finished"]
            )
        )
    assert per_round == [4 - finished for finished in finished_before]
    assert per_round[0] == 4 and per_round[-1] < 4


class KeywordEmbedder:
    """Embeds a step by whether it adds or subtracts; records how often it was asked."""

    name = "keywords"
    calls = 0

    async def embed(self, session: Session, token_ids: object, texts: list[str]) -> np.ndarray:
        type(self).calls += 1
        return np.array([[1.0, 0.0] if "add" in text else [0.0, 1.0] for text in texts])


def one_odd_step_out(prompt: str) -> str:
    """Round 1: three adding steps and one subtracting step; round 2: the answer."""
    if prompt.split("<|assistant|>", 1)[1].count("Step "):
        return "Final answer: 7"
    one_odd_step_out.index += 1  # type: ignore[attr-defined]
    if one_odd_step_out.index % 4 == 0:  # type: ignore[attr-defined]
        return "Step 1 odd: subtract 4 from 3.\n\n"
    return "Step 1 even: add 3 and 4.\n\n"


@pytest.mark.parametrize("selection", ["ets", "beam"])
async def test_ets_keeps_a_weaker_leaf_of_another_cluster_that_beam_drops(selection: str) -> None:
    one_odd_step_out.index = 0  # type: ignore[attr-defined]
    KeywordEmbedder.calls = 0
    # At 0.7 against 0.9 REBASE's split of the 4 children still gives the subtracting step one.
    scorer = FunctionScorer(lambda question, response: 0.7 if "subtract" in response else 0.9, name="likes_adding")
    solution = await reasoner_for(one_odd_step_out).asolve(
        "q",
        2000,
        "tree_search",
        selection=selection,
        width=4,
        max_depth=2,
        scorer=scorer,
        **({"step_embedder": KeywordEmbedder()} if selection == "ets" else {"expand": 2}),
    )
    graph = solution.trace
    kept = [attrs["text"] for _, attrs in graph.nodes(data=True) if attrs.get("kept")]
    clusters = {attrs.get("cluster") for _, attrs in graph.nodes(data=True) if attrs.get("depth") == 1}
    if selection == "ets":
        assert any("subtract" in text for text in kept)
        assert clusters == {0, 1}
        assert KeywordEmbedder.calls == 2
        assert solution.metrics["step_embedder"] == "keywords"
        assert solution.metrics["clusters_per_round"] == 1.5
    else:
        assert kept and not any("subtract" in text for text in kept)
        assert KeywordEmbedder.calls == 0
        assert solution.metrics["step_embedder"] == "none"


@pytest.mark.parametrize(
    ("options", "refused"),
    [
        ({"expand": 2}, "expand"),
        ({"selection": "rebase", "expand": 2}, "expand"),
        ({"selection": "beam", "temperature": 0.5}, "temperature"),
        ({"selection": "beam", "coverage_weight": 1.0}, "coverage_weight"),
        ({"selection": "rebase", "kv_cost": "tokens"}, "kv_cost"),
        ({"selection": "rebase", "reward_weight": 2.0}, "reward_weight"),
        ({"selection": "beam", "step_embedder": "input"}, "step_embedder"),
        ({"coverage_weight": 0.0, "cluster_threshold": 0.1}, "cluster_threshold"),
        ({"sampling_temperature": 0.0, "top_p": 0.9}, "top_p"),
    ],
)
async def test_an_option_the_chosen_selection_does_not_read_is_refused_by_name(
    scripted_reasoner: Reasoner, options: dict[str, Any], refused: str
) -> None:
    with pytest.raises(StrategyError, match=rf"option '{refused}' (does not apply|applies only) with"):
        await scripted_reasoner.asolve("q", 100, "tree_search", **options)
    assert not scripted_reasoner.backend.requests  # type: ignore[attr-defined]


def test_ets_defaults_are_the_reference_implementations_weights() -> None:
    options = TreeSearchOptions()
    weights = EtsWeights(options.reward_weight, options.coverage_weight, options.kv_weight, options.kv_cost)
    assert weights == EtsWeights() == EtsWeights(reward=1.0, coverage=1.5, kv=1.0, kv_cost="nodes")
    assert options.temperature == 0.2 and options.cluster_threshold == 0.05


async def test_an_unknown_step_embedder_is_a_strategy_error(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(StrategyError, match="step_embedder"):
        await scripted_reasoner.asolve("q", 100, "tree_search", step_embedder="word2vec")


@pytest.mark.parametrize(
    ("option", "value"),
    [("width", 0), ("expand", 0), ("kv_weight", -1.0), ("coverage_weight", -0.5), ("reward_weight", -2.0)],
)
async def test_bad_options_are_strategy_errors_naming_the_option(
    scripted_reasoner: Reasoner, option: str, value: float
) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(StrategyError, match=option):
        await scripted_reasoner.asolve("q", 100, "tree_search", **options)


async def test_an_unknown_scorer_name_is_a_strategy_error(scripted_reasoner: Reasoner) -> None:
    with pytest.raises(StrategyError, match="unknown scorer"):
        await scripted_reasoner.asolve("q", 100, "tree_search", scorer="oracle")


@settings(max_examples=40, deadline=None)
@given(
    budget=st.integers(4, 300),
    width=st.integers(1, 4),
    expand=st.integers(1, 3),
    depth=st.integers(1, 4),
    final_after=st.one_of(st.none(), st.integers(0, 3)),
    selection=st.sampled_from(["ets", "beam", "rebase"]),
)
def test_search_never_spends_more_than_the_budget(
    budget: int, width: int, expand: int, depth: int, final_after: int | None, selection: str
) -> None:
    reasoner = reasoner_for(stepper(final_after))
    options: dict[str, Any] = {"selection": selection, "width": width, "max_depth": depth, "step_tokens": 12}
    if selection == "beam":
        options["expand"] = expand
    solution = asyncio.run(reasoner.asolve("q", budget, "tree_search", scorer=constant(0.5), **options))
    assert solution.usage.generated_tokens <= budget
    assert number(solution, "rounds") <= depth
    distinct, unshared = kept_tree_kv(solution.trace)
    assert (number(solution, "kv_peak_distinct_tokens"), number(solution, "kv_peak_unshared_tokens")) == (
        distinct,
        unshared,
    )


@pytest.mark.engine
async def test_width_four_depth_three_search_on_the_engine_accounts_for_every_token(engine_reasoner: Reasoner) -> None:
    solution = await engine_reasoner.asolve("What is 7 + 5?", 1200, "tree_search", width=4, max_depth=3, step_tokens=32)
    graph = solution.trace
    requests = [node for node, attrs in graph.nodes(data=True) if "request_id" in attrs]
    steps = [node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "step"]
    leaves = [
        node for node in steps if not any(graph.nodes[child]["kind"] == "step" for child in graph.successors(node))
    ]
    paths = ["".join(graph.nodes[step]["text"] for step in nx.shortest_path(graph, 0, leaf)[1:]) for leaf in leaves]
    assert solution.text in paths  # the answer is one root-to-leaf path of the tree, whole
    assert 1 <= number(solution, "rounds") <= 3
    assert len(steps) == solution.metrics["nodes"]
    assert len(requests) == solution.usage.requests
    assert sum(attrs["tokens"] for _, attrs in graph.nodes(data=True)) == solution.usage.generated_tokens
    assert solution.usage.generated_tokens <= 1200
    distinct, unshared = kept_tree_kv(graph)
    assert (number(solution, "kv_peak_distinct_tokens"), number(solution, "kv_peak_unshared_tokens")) == (
        distinct,
        unshared,
    )


@pytest.mark.engine
async def test_ets_on_the_engine_clusters_steps_with_the_sentence_model(engine_reasoner: Reasoner) -> None:
    # At a near-zero distance threshold two steps share a cluster exactly when MiniLM (uncased)
    # reads the same words: same text up to case and spacing.
    solution = await engine_reasoner.asolve(
        "What is 7 + 5?",
        600,
        "tree_search",
        selection="ets",
        width=4,
        max_depth=2,
        step_tokens=24,
        cluster_threshold=1e-6,
    )
    graph = solution.trace
    by_depth: dict[int, list[tuple[str, int]]] = {}
    for _, attrs in graph.nodes(data=True):
        if attrs["kind"] == "step":
            by_depth.setdefault(attrs["depth"], []).append((" ".join(attrs["text"].lower().split()), attrs["cluster"]))
    assert solution.metrics["step_embedder"] == "minilm"
    assert len(by_depth[1]) == 4
    for steps in by_depth.values():
        for (text, cluster), (other_text, other_cluster) in itertools.combinations(steps, 2):
            assert (cluster == other_cluster) == (text == other_text)
    per_round = [len({cluster for _, cluster in steps}) for steps in by_depth.values()]
    assert number(solution, "clusters_per_round") == pytest.approx(sum(per_round) / len(per_round))


class PositionEmbedder:
    """Round 1: the first three steps embed alike (cluster A), the fourth apart (cluster B); later rounds alike."""

    name = "position"

    def __init__(self) -> None:
        self.rounds = 0

    async def embed(self, session: Session, token_ids: object, texts: list[str]) -> np.ndarray:
        self.rounds += 1
        apart = [self.rounds == 1 and index == 3 for index in range(len(texts))]
        return np.array([[0.0, 1.0] if alone else [1.0, 0.0] for alone in apart])


@pytest.mark.engine
async def test_ets_on_the_engine_keeps_the_leaves_the_ilp_picks(engine_reasoner: Reasoner) -> None:
    # Round 1 scores 0.5, 0.9, 0.6 (cluster A) and 0.7 (cluster B); every step is forced to 8 tokens.
    # REBASE splits the width 4 as 0 : 2 : 1 : 1, so the rewards (width shares) are 0, 1/2, 1/4, 1/4;
    # each node costs 1/5 (four steps and the prompt). With coverage and KV weights 2, 2, by hand:
    #   keep {0.9 A, 0.7 B}: 3/4 + 2 * 2/2 - 2 * 2/5 = 1.95  (the best)
    #   keep {0.9, 0.6, 0.7}: 1.8;  keep all four: 1.4;  keep {0.9}: 1.1;  keep {0.9, 0.6}: 0.95
    # so ETS keeps the best leaf and, of the two with equal shares, the one of the other cluster;
    # REBASE's split of the 4 children over the kept two (softmax 0.73 : 0.27) gives them 3 : 1.
    scorer = TraceOrder(lambda position, attrs: 0.5 if attrs["depth"] > 1 else (0.5, 0.9, 0.6, 0.7)[position])
    solution = await forced(engine_reasoner).asolve(
        STORY,
        200,
        "tree_search",
        selection="ets",
        width=4,
        max_depth=2,
        step_tokens=8,
        coverage_weight=2.0,
        kv_weight=2.0,
        scorer=scorer,
        step_embedder=PositionEmbedder(),
    )
    graph = solution.trace
    first = sorted(node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "step" and attrs["depth"] == 1)
    second = [node for node, attrs in graph.nodes(data=True) if attrs["kind"] == "step" and attrs["depth"] == 2]
    assert len(first) == 4 and not any(graph.nodes[node]["finished"] for node in first)
    assert [graph.nodes[node]["cluster"] for node in first] == [0, 0, 0, 1]
    assert {node for node in first if graph.nodes[node].get("kept")} == {first[1], first[3]}
    assert graph.nodes[first[1]]["children_allotted"] == 3 and graph.nodes[first[3]]["children_allotted"] == 1
    assert sorted(next(iter(graph.predecessors(node))) for node in second) == [first[1]] * 3 + [first[3]]
    prompt = graph.nodes[0]["prompt_tokens"]
    assert number(solution, "kv_peak_distinct_tokens") == prompt + 2 * 8
    assert number(solution, "kv_peak_unshared_tokens") == 2 * (prompt + 8)
    assert solution.metrics["clusters_per_round"] == 1.5
