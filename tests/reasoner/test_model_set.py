"""Several models in one Reasoner, on two scripted backends: targeting, accounting, the shared budget, bad input."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner import (
    Budget,
    BudgetExhausted,
    InputError,
    ModelError,
    ModelSpec,
    Outcome,
    Reasoner,
    Session,
    Strategy,
    register_strategy,
)
from reasoner.events import SolveEvent
from reasoner.testing import ScriptedBackend

QUESTION = "What is 2 + 3?"


@register_strategy
class AskBoth(Strategy):
    """One request on the solve's own model, then one on "large"."""

    name = "test_ask_both"

    async def run(self, session: Session, prompt: str) -> Outcome:
        first = await session.generate(prompt, max_tokens=16, phase="thinking", kind="think")
        second = await session.generate(prompt, max_tokens=16, phase="answer", kind="answer", model="large")
        assert (first.model, second.model) == (session.model, "large")
        return Outcome(second.text, session.extract_answer(second.text))


@register_strategy
class Alternate(Strategy):
    """Requests of 7 tokens, alternating small and large, until the budget refuses one."""

    name = "test_alternate"

    async def run(self, session: Session, prompt: str) -> Outcome:
        turn = 0
        try:
            while True:
                await session.generate(
                    prompt, max_tokens=7, phase="answer", kind="answer", model=("small", "large")[turn % 2]
                )
                turn += 1
        except BudgetExhausted:
            return Outcome("", None)


def two_models(**kwargs: object) -> tuple[Reasoner, ScriptedBackend, ScriptedBackend]:
    small = ScriptedBackend("small says: Final answer: 4")
    large = ScriptedBackend("the large model thinks it through. Final answer: 5")
    reasoner = Reasoner(
        models={
            "small": ModelSpec(backend=small, profile="smollm2"),
            "large": {"backend": large, "profile": "smollm2"},
        },
        **kwargs,  # type: ignore[arg-type]
    )
    return reasoner, small, large


async def test_each_request_runs_on_the_model_it_names() -> None:
    reasoner, small, large = two_models()
    events: list[SolveEvent] = []
    solution = await reasoner.asolve(QUESTION, budget=64, strategy="test_ask_both", on_event=events.append)
    assert [len(small.requests), len(large.requests)] == [1, 1]
    assert {(event.kind, event.model) for event in events} == {("think", "small"), ("answer", "large")}
    assert solution.answer == "5"  # the large model's answer
    models = {data["kind"]: data["model"] for _, data in solution.trace.nodes(data=True)}
    assert models == {"think": "small", "answer": "large"}


async def test_usage_by_model_counts_each_models_requests_and_adds_up_to_the_usage() -> None:
    reasoner, small, large = two_models()
    usage = (await reasoner.asolve(QUESTION, budget=64, strategy="test_ask_both")).usage
    assert set(usage.by_model) == {"small", "large"}
    for name, backend in (("small", small), ("large", large)):
        assert usage.by_model[name].generated_tokens == sum(request.generated_tokens for request in backend.requests)
        assert usage.by_model[name].prompt_tokens == sum(len(request.prompt_token_ids) for request in backend.requests)
        assert usage.by_model[name].requests == len(backend.requests)
    for figure in ("generated_tokens", "prompt_tokens", "cached_prompt_tokens", "requests"):
        assert sum(getattr(each, figure) for each in usage.by_model.values()) == getattr(usage, figure), figure


async def test_a_solve_runs_on_the_first_model_unless_default_or_the_call_names_another() -> None:
    reasoner, small, large = two_models()
    assert (await reasoner.asolve(QUESTION, budget=64)).model == "small"
    on_large = await reasoner.asolve(QUESTION, budget=64, model="large")
    assert on_large.model == "large" and set(on_large.usage.by_model) == {"large"}
    assert [len(small.requests), len(large.requests)] == [1, 1]
    by_default, _, _ = two_models(default="large")
    assert (await by_default.asolve(QUESTION, budget=64)).model == "large"
    assert by_default.model_name == "large" and by_default.backend is by_default.models["large"].backend


@settings(max_examples=25, deadline=None)
@given(tokens=st.integers(min_value=4, max_value=60))
def test_the_budget_caps_the_solve_across_both_models(tokens: int) -> None:
    reasoner, small, large = two_models()
    solution = asyncio.run(reasoner.asolve(QUESTION, budget=tokens, strategy="test_alternate", model="small"))
    spent = sum(request.generated_tokens for request in (*small.requests, *large.requests))
    assert spent == solution.usage.generated_tokens <= tokens
    assert large.requests or tokens <= 7  # past the first request's grant the large model got one


async def test_on_model_runs_a_strategy_on_another_model_within_the_same_solve() -> None:
    reasoner, small, large = two_models()
    await reasoner.astart()
    session = Session(
        small, small.tokenizer(), reasoner.profile, Budget(tokens=40), models=reasoner.models, model="small"
    )
    on_large = session.on_model("large")
    generation = await on_large.generate(QUESTION, max_tokens=30, phase="answer", kind="answer")
    assert generation.model == "large" and len(large.requests) == 1 and not small.requests
    assert session.ledger is on_large.ledger and session.remaining == 40 - len(generation.token_ids)
    assert on_large.on_model("small").model == "small"


async def test_an_abort_reaches_the_backend_of_the_requests_model() -> None:
    small = ScriptedBackend("word " * 50, delay_s=0.01)
    large = ScriptedBackend("word " * 50, delay_s=0.01)
    reasoner = Reasoner(models={"small": {"backend": small}, "large": {"backend": large}})
    await reasoner.astart()
    session = Session(
        small, small.tokenizer(), reasoner.profile, Budget(tokens=100), models=reasoner.models, model="small"
    )
    running = await session.start(QUESTION, max_tokens=40, phase="answer", kind="answer", model="large")
    await running.wait_for_tokens(2)
    generation = await running.abort()
    assert generation.finish_reason == "abort" and large.requests[0].aborted


async def test_a_request_for_an_unknown_model_is_a_model_error_naming_the_known_ones() -> None:
    reasoner, _, _ = two_models()
    with pytest.raises(ModelError, match="unknown model 'huge'.*small, large"):
        await reasoner.asolve(QUESTION, budget=64, model="huge")
    with pytest.raises(ModelError, match="unknown model 'huge'"):
        reasoner.validate(QUESTION, 64, "direct", model="huge")
    await reasoner.astart()
    session = Session(
        reasoner.backend, reasoner.backend.tokenizer(), reasoner.profile, Budget(tokens=8), models=reasoner.models
    )
    with pytest.raises(ModelError, match="unknown model 'huge'"):
        await session.start(QUESTION, max_tokens=4, phase="answer", kind="answer", model="huge")
    assert session.ledger.requests == 0


def test_a_single_model_reasoner_counts_its_usage_under_its_models_name(scripted_reasoner: Reasoner) -> None:
    solution = scripted_reasoner.solve(QUESTION, budget=64)
    assert list(solution.usage.by_model) == [scripted_reasoner.model_name] == [solution.model]
    assert solution.usage.by_model[solution.model].generated_tokens == solution.usage.generated_tokens


@pytest.mark.parametrize(
    ("models", "error", "message"),
    [
        ({}, InputError, "models is empty"),
        ({"": "smollm2"}, ModelError, "model name ''"),
        ({"two words": "smollm2"}, ModelError, "model name 'two words'"),
        ({"small:x": "smollm2"}, ModelError, "is not usable"),
        ({"small": 3}, ModelError, "must be a model id"),
        ({"small": {"modle": "smollm2"}}, InputError, "unknown field modle; known: model, endpoint"),
        ({"small": {"endpoint": "http://x/v1", "engine_args": {"a": 1}}}, InputError, "cannot be combined"),
        (["small"], InputError, "models must be a dict"),
    ],
)
def test_a_bad_model_set_is_a_typed_error(models: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Reasoner(models=models)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"model": "smollm2"}, "model= cannot be given beside it"),
        ({"profile": "smollm2"}, "profile= cannot be given beside it"),
        ({"endpoint": "http://x/v1"}, "endpoint= cannot be given beside it"),
        ({"backend": ScriptedBackend()}, "backend= cannot be given beside it"),
    ],
)
def test_models_beside_a_single_model_argument_is_an_input_error(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Reasoner(models={"small": {"backend": ScriptedBackend()}}, **arguments)  # type: ignore[arg-type]


def test_default_must_name_one_of_the_models() -> None:
    with pytest.raises(ModelError, match="default='huge' is not one of the models: small"):
        Reasoner(models={"small": {"backend": ScriptedBackend()}}, default="huge")
    with pytest.raises(InputError, match="default= names one of models="):
        Reasoner(backend=ScriptedBackend(), default="small")
