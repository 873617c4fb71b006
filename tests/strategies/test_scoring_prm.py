from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from transformers import AutoTokenizer

from reasoner import Budget, Reasoner, Session, StrategyError
from reasoner.errors import ModelError
from reasoner.models import provision_embedded_model
from reasoner.profiles import get_profile
from reasoner.runtime import LoopThread
from reasoner.testing import ScriptedBackend
from strategies.scoring import Scorer
from strategies.scoring_prm import AGGREGATES, QWEN_PRM, PRMFormat, PRMScorer, aggregate_rewards, split_steps
from tests.strategies.test_tree_search import reasoner_for, stepper

# Math-Shepherd's layout on the embedded causal LM: a step tag after each step, the reward is
# P("+") against P("-") at the tag, read through the LM head's rows for those two tokens.
PLUS_MINUS = PRMFormat("plus-minus", step_tag=" ки", chat=False, positive_label=1, classifier_tokens=("-", "+"))
SMALL_ENGINE = {"kv_cache_memory_bytes": 512 << 20, "enforce_eager": True, "block_size": 32, "max_model_len": 2048}


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return AutoTokenizer.from_pretrained(provision_embedded_model())


def embedded_scorer(**kwargs: object) -> PRMScorer:
    return PRMScorer(str(provision_embedded_model()), prm_format=PLUS_MINUS, **kwargs)  # type: ignore[arg-type]


def test_steps_are_the_non_blank_parts_between_separators_stripped() -> None:
    assert split_steps("  a = 1\n\n\n\nb = 2 \n\n \n\nanswer 3\n\n") == ["a = 1", "b = 2", "answer 3"]


def test_a_custom_separator_splits_steps() -> None:
    assert split_steps("x. ки y. ки z", " ки") == ["x.", "y.", "z"]


def test_an_empty_separator_is_refused() -> None:
    with pytest.raises(StrategyError, match="step_separator"):
        split_steps("a\n\nb", "")


@pytest.mark.parametrize(("how", "expected"), [("last", 0.5), ("min", 0.3), ("mean", 0.6), ("prod", 0.15)])
def test_each_aggregate_combines_step_rewards_its_own_way(how: str, expected: float) -> None:
    assert aggregate_rewards([1.0, 0.3, 0.5], how) == pytest.approx(expected)


@given(
    st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=30),
    st.sampled_from(AGGREGATES),
)
def test_every_aggregate_of_rewards_in_the_unit_interval_stays_in_it(rewards: list[float], how: str) -> None:
    assert 0.0 <= aggregate_rewards(rewards, how) <= 1.0


def test_an_unknown_aggregate_names_the_choices() -> None:
    with pytest.raises(StrategyError, match="last, min, mean, prod"):
        aggregate_rewards([0.5], "max")


def test_no_rewards_cannot_be_aggregated() -> None:
    with pytest.raises(StrategyError, match="no step rewards"):
        aggregate_rewards([], "min")


def test_each_step_reward_is_read_at_the_last_token_of_its_tag(tokenizer: object) -> None:
    ids, positions = PLUS_MINUS.render(tokenizer, "What is 2 + 3?", ["2 + 3 = 5.", "The answer is 5."])
    tag = tokenizer.encode(" ки", add_special_tokens=False)  # type: ignore[attr-defined]
    assert len(positions) == 2
    for position in positions:
        assert ids[position - len(tag) + 1 : position + 1] == tag
    assert tokenizer.decode(ids).startswith("What is 2 + 3?\n2 + 3 = 5. ки")  # type: ignore[attr-defined]


def test_a_chat_format_puts_the_tagged_steps_in_the_assistant_turn_after_the_system_turn(tokenizer: object) -> None:
    chat = PRMFormat("chat", step_tag=" ки", chat=True, system="Judge the steps.")
    ids, positions = chat.render(tokenizer, "What is 2 + 3?", ["Add.", "5."])
    text = tokenizer.decode(ids)  # type: ignore[attr-defined]
    assert text.index("Judge the steps.") < text.index("What is 2 + 3?") < text.index("Add. ки5. ки")
    assert positions[-1] < len(ids) - 1


def test_the_qwen_format_tags_steps_with_extra_0_under_its_system_prompt() -> None:
    assert QWEN_PRM.step_tag == "<extra_0>"
    assert QWEN_PRM.chat and QWEN_PRM.system is not None and "\\boxed{}" in QWEN_PRM.system
    assert QWEN_PRM.engine_overrides() == {}


def test_a_causal_lm_format_asks_vllm_for_a_two_token_classifier_head() -> None:
    assert PLUS_MINUS.engine_overrides() == {
        "convert": "classify",
        "hf_overrides": {"classifier_from_token": ["-", "+"], "method": "no_post_processing"},
    }


def test_engine_args_are_pooling_defaults_then_format_then_caller() -> None:
    args = embedded_scorer(engine_args={"max_model_len": 1024}).engine_args()
    assert args["runner"] == "pooling"
    assert args["convert"] == "classify"
    assert args["max_model_len"] == 1024
    assert args["kv_cache_memory_bytes"] == 512 << 20


def test_an_unknown_model_folder_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="does not exist"):
        PRMScorer("/nonexistent/prm-model")


def test_an_unknown_aggregate_is_refused_when_the_scorer_is_built() -> None:
    with pytest.raises(StrategyError, match="aggregate"):
        embedded_scorer(aggregate="max")


def test_the_prm_scorer_is_a_scorer_and_starts_no_engine_when_built() -> None:
    scorer = embedded_scorer()
    assert isinstance(scorer, Scorer)
    assert not scorer.running


async def test_a_score_is_one_eval_segment_with_step_rewards_and_no_ledger_tokens(
    scripted_reasoner: Reasoner,
) -> None:
    scorer = embedded_scorer(aggregate="mean")

    async def rewards(question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        return [0.25 * (index + 1) for index in range(len(steps))], 40

    scorer.step_rewards = rewards  # type: ignore[method-assign]
    solution = await scripted_reasoner.asolve("What is 2 + 3?", 200, "tree_search", scorer=scorer, max_depth=2)
    graph = solution.trace
    evals = [attrs for _, attrs in graph.nodes(data=True) if attrs["kind"] == "eval"]
    assert evals
    assert all(attrs["scorer"] == "prm" and attrs["prm_prompt_tokens"] == 40 for attrs in evals)
    assert all(attrs["tokens"] == 0 and "request_id" not in attrs for attrs in evals)
    assert all(
        attrs["score"] == pytest.approx(sum(attrs["step_scores"]) / len(attrs["step_scores"])) for attrs in evals
    )
    assert solution.metrics["scorer_errors"] == 0
    assert sum(attrs["tokens"] for _, attrs in graph.nodes(data=True)) == solution.usage.generated_tokens


def scripted_rewards(scorer: PRMScorer, rewards: list[float]) -> PRMScorer:
    """`scorer` with its step rewards taken from `rewards` (as many as there are steps), on no engine."""

    async def step_rewards(question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        return rewards[: len(steps)], 10

    scorer.step_rewards = step_rewards  # type: ignore[method-assign]
    return scorer


def scripted_session() -> Session:
    backend = ScriptedBackend("unused")
    return Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=1))


async def test_a_prm_built_without_an_aggregate_takes_the_lowest_step_reward() -> None:
    scorer = scripted_rewards(embedded_scorer(), [0.9, 0.2, 0.7])
    assert scorer.aggregate is None
    assert await scorer.score(scripted_session(), "q", "a\n\nb\n\nc") == 0.2


async def test_a_view_aggregated_by_another_rule_reads_the_same_rewards_its_own_way() -> None:
    prm = scripted_rewards(embedded_scorer(aggregate="min"), [0.9, 0.2, 0.7])
    session = scripted_session()
    view = prm.aggregated_by("last")
    assert isinstance(view, Scorer) and view.name == prm.name
    assert await view.score(session, "q", "a\n\nb\n\nc") == 0.7
    assert await prm.score(session, "q", "a\n\nb\n\nc") == 0.2
    evals = [attrs for _, attrs in session.trace.graph.nodes(data=True) if attrs["kind"] == "eval"]
    assert [(attrs["aggregate"], attrs["score"]) for attrs in evals] == [("last", 0.7), ("min", 0.2)]


@pytest.fixture(scope="module")
def prm_engine() -> Iterator[tuple[PRMScorer, set[int]]]:
    """The embedded model as a PRM on its own small pooling engine, started once on its own loop.

    Also yields the processes the engine started (multiprocessing's shared resource tracker and
    the toolkit's engine watchdog, which outlive every engine by design, are not among them).
    """
    scorer = embedded_scorer(engine_args=SMALL_ENGINE, name="embedded_prm")
    loop = LoopThread()
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    loop.run(scorer.start())
    engine_pids = {
        child.pid
        for child in psutil.Process().children(recursive=True)
        if child.pid not in before
        and not any(helper in " ".join(child.cmdline()) for helper in ("resource_tracker", "engines/watchdog.py"))
    }
    yield scorer, engine_pids
    scorer.close()
    loop.stop()


@pytest.mark.engine
async def test_the_prm_engine_returns_one_reward_in_the_unit_interval_per_step(
    prm_engine: tuple[PRMScorer, set[int]],
) -> None:
    scorer, _ = prm_engine
    rewards, prompt_tokens = await scorer.step_rewards("What is 2 + 3?", ["2 + 3 = 5.", "So 5.", "Answer: 5"])
    assert len(rewards) == 3
    assert all(0.0 <= reward <= 1.0 for reward in rewards)
    assert prompt_tokens > 10


@pytest.mark.engine
async def test_tree_search_scores_paths_with_the_prm_without_charging_its_tokens(
    prm_engine: tuple[PRMScorer, set[int]],
) -> None:
    # The steps are scripted, the PRM is the real engine: so this test needs no generation engine and runs
    # beside the shared one (tree search with a PRM over real generated steps: tests/integration/test_remote.py).
    scorer, _ = prm_engine
    solution = await reasoner_for(stepper(final_after=2)).asolve(
        "What is 7 + 5?", 300, "tree_search", scorer=scorer, width=2, max_depth=2, step_tokens=24
    )
    graph = solution.trace
    evals = [attrs for _, attrs in graph.nodes(data=True) if attrs.get("scorer") == "embedded_prm"]
    steps = [attrs for _, attrs in graph.nodes(data=True) if attrs["kind"] == "step"]
    assert evals
    assert solution.metrics["scorer_errors"] == 0
    assert all(0.0 <= attrs["score"] <= 1.0 and attrs["step_scores"] for attrs in evals)
    assert all(attrs["prm_prompt_tokens"] > 0 for attrs in evals)
    assert any(attrs["score"] > 0.0 for attrs in steps)
    assert sum(attrs["tokens"] for _, attrs in graph.nodes(data=True)) == solution.usage.generated_tokens
    assert scorer.starts == 1


def running(pids: set[int]) -> list[int]:
    """The processes among `pids` still running: gone and zombie ones (dead, not yet reaped) are not."""
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


@pytest.mark.engine
def test_closing_the_prm_scorer_leaves_no_engine_process(prm_engine: tuple[PRMScorer, set[int]]) -> None:
    scorer, engine_pids = prm_engine
    assert engine_pids
    scorer.close()
    deadline = time.monotonic() + 30
    while (alive := running(engine_pids)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive
    assert not scorer.running
