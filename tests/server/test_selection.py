"""Which strategy, budget and options a request selects, and the question a chat asks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field

from reasoner import Budget, BudgetError, Reasoner, StrategyOptions
from reasoner.testing import ScriptedBackend
from server.config import ServerConfig
from server.errors import APIError
from server.protocol import ChatCompletionRequest, ChatMessage
from server.selection import conversation_text, is_operator_only, plan_chat, resolve_budget, strategy_from_model

CONFIG = ServerConfig(model_name="smol", default_strategy="direct", default_budget=256, max_budget=4096)


@pytest.fixture
def reasoner() -> Reasoner:
    return Reasoner(backend=ScriptedBackend("Final answer: 1"), profile="smollm2")


def chat(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "1 + 0?"}]} | fields)


def test_the_served_model_name_means_the_default_strategy() -> None:
    assert strategy_from_model("smol", CONFIG) == ("direct", None)
    assert strategy_from_model("default", CONFIG) == ("direct", None)


def test_strategy_at_budget_names_both() -> None:
    assert strategy_from_model("elastic@1024", CONFIG) == ("elastic", 1024)
    assert strategy_from_model("self_consistency", CONFIG) == ("self_consistency", None)
    assert strategy_from_model("smol@64", CONFIG) == ("direct", 64)


@pytest.mark.parametrize(
    ("model", "status"), [("gpt-4", 404), ("nope@12", 400), ("elastic@0", 400), ("elastic@x", 400)]
)
def test_unknown_models_and_bad_budgets_are_refused(model: str, status: int) -> None:
    with pytest.raises(APIError) as caught:
        strategy_from_model(model, CONFIG)
    assert caught.value.status == status


@given(
    explicit=st.one_of(st.none(), st.integers(1, 10_000)),
    from_model=st.one_of(st.none(), st.integers(1, 10_000)),
    cap=st.one_of(st.none(), st.integers(1, 10_000)),
)
def test_the_token_cap_caps_whatever_budget_was_chosen(
    explicit: int | None, from_model: int | None, cap: int | None
) -> None:
    budget = resolve_budget(explicit, from_model, cap, 256)
    chosen = explicit if explicit is not None else from_model
    expected = chosen if chosen is not None else (cap if cap is not None else 256)
    assert budget.tokens == (expected if cap is None else min(expected, cap))


def test_a_budget_object_keeps_its_split_under_the_cap() -> None:
    budget = resolve_budget({"tokens": 1000, "thinking": 600, "answer": 100}, None, 800, 256)
    assert budget == Budget(tokens=800, thinking=600, answer=100)
    with pytest.raises(BudgetError):
        resolve_budget({"tokens": 1000, "thinking": 600, "answer": 300}, None, 800, 256)


def test_reasoning_effort_selects_the_mode_dial(reasoner: Reasoner) -> None:
    plan = plan_chat(chat(model="smol", reasoning_effort="low"), CONFIG, reasoner)
    assert (plan.strategy, plan.options["mode"]) == ("mode", "low")
    assert plan_chat(chat(model="smol", reasoning_effort="minimal"), CONFIG, reasoner).options["mode"] == "off"
    with pytest.raises(APIError, match="mode"):
        plan_chat(chat(model="elastic", reasoning_effort="high"), CONFIG, reasoner)


def test_max_completion_tokens_caps_the_whole_solve_and_wins_over_max_tokens(reasoner: Reasoner) -> None:
    plan = plan_chat(chat(model="self_consistency@900", max_tokens=500, max_completion_tokens=300), CONFIG, reasoner)
    assert plan.budget.tokens == 300


def test_temperature_becomes_an_option_only_where_the_strategy_has_one(reasoner: Reasoner) -> None:
    plan = plan_chat(chat(model="direct", temperature=0.7), CONFIG, reasoner)
    assert plan.options == {"temperature": 0.7}
    explicit = plan_chat(chat(model="direct", temperature=0.7, strategy_options={"temperature": 0.1}), CONFIG, reasoner)
    assert explicit.options == {"temperature": 0.1}


@pytest.mark.parametrize(
    ("strategy", "option"),
    [
        ("self_consistency", "temperature"),
        ("self_eval", "temperature"),
        ("deepconf", "temperature"),
        ("tree_search", "sampling_temperature"),
        ("particle_filter", "sampling_temperature"),
    ],
)
def test_a_sampling_strategy_refuses_temperature_0_and_says_how_to_sample(
    reasoner: Reasoner, strategy: str, option: str
) -> None:
    with pytest.raises(APIError) as caught:
        plan_chat(chat(model=strategy, temperature=0), CONFIG, reasoner)
    assert caught.value.status == 400 and caught.value.param == "temperature"
    assert "leave temperature out" in caught.value.message and "--gen_kwargs temperature=" in caught.value.message
    assert plan_chat(chat(model=strategy, temperature=0.5), CONFIG, reasoner).options == {option: 0.5}
    explicit = plan_chat(chat(model=strategy, temperature=0, strategy_options={option: 0.3}), CONFIG, reasoner)
    assert explicit.options == {option: 0.3}


def test_a_greedy_strategy_takes_temperature_0(reasoner: Reasoner) -> None:
    for strategy in ("direct", "elastic", "parallel"):
        assert plan_chat(chat(model=strategy, temperature=0), CONFIG, reasoner).options == {"temperature": 0.0}


def test_options_naming_server_files_and_budgets_past_the_limit_are_refused(reasoner: Reasoner) -> None:
    with pytest.raises(APIError, match="only the server's operator sets it"):
        plan_chat(chat(model="auto", strategy_options={"policy_file": "/etc/passwd"}), CONFIG, reasoner)
    with pytest.raises(APIError, match="limit of 4096"):
        plan_chat(chat(model="direct", budget=5000), CONFIG, reasoner)
    with pytest.raises(APIError, match="answer_format"):
        plan_chat(chat(model="direct", strategy_options={"answer_format": "code"}), CONFIG, reasoner)


def test_a_chat_is_one_question_with_its_system_text_first() -> None:
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content=[{"type": "text", "text": "2 + 2?"}]),  # type: ignore[list-item]
    ]
    assert conversation_text(messages) == "Be brief.\n\n2 + 2?"
    turns = [
        ChatMessage(role="user", content="2 + 2?"),
        ChatMessage(role="assistant", content="4"),
        ChatMessage(role="user", content="times 3?"),
    ]
    assert conversation_text(turns) == "User: 2 + 2?\n\nAssistant: 4\n\nUser: times 3?"
    with pytest.raises(APIError, match="last message"):
        conversation_text([ChatMessage(role="user", content="hi"), ChatMessage(role="assistant", content="yo")])


class ThirdPartyOptions(StrategyOptions):
    source: str = Field(default="builtin", json_schema_extra={"operator_only": True})
    index_path: str = "index.json"
    depth: int = 2


@pytest.mark.parametrize(("name", "operator_only"), [("source", True), ("index_path", True), ("depth", False)])
def test_a_strategy_marks_its_operator_only_options_without_the_server_naming_them(
    name: str, operator_only: bool
) -> None:
    assert is_operator_only(name, ThirdPartyOptions.model_fields[name]) is operator_only
