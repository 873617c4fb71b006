"""The checks of a request that need no engine.

They run before any model work: the CLI calls `validate_request` before it provisions a model;
`validate_on_models` adds the checks against a Reasoner's built models (profiles, cost models).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reasoner.answers import ANSWER_FORMATS
from reasoner.budget import Budget, BudgetLike, as_budget
from reasoner.errors import BudgetError, InputError, PromptError, StrategyError
from reasoner.model_set import ModelTarget
from reasoner.profiles import ModelProfile
from reasoner.strategy import Strategy, get_strategy


def validate_request(
    prompt: str, budget: BudgetLike, strategy: str, answer_format: str, options: dict[str, Any]
) -> tuple[Budget, Strategy]:
    """The checks of a request that need no model: prompt, answer format, budget, strategy and options."""
    check_prompt(prompt)
    if answer_format not in ANSWER_FORMATS:
        raise InputError(f"answer_format {answer_format!r} is not one of {', '.join(ANSWER_FORMATS)}")
    resolved_budget = as_budget(budget)
    if not isinstance(strategy, str):
        raise StrategyError(f"strategy must be a strategy name, got {strategy!r}")
    return resolved_budget, get_strategy(strategy).from_options(options)


def validate_on_models(
    prompt: str,
    budget: BudgetLike,
    strategy: str,
    answer_format: str,
    options: dict[str, Any],
    models: Mapping[str, ModelTarget],
    target: ModelTarget,
) -> tuple[Budget, Strategy]:
    """`validate_request`, then the checks against the models: names a strategy gives, the budget
    against `target`'s profile, and a cost cap against every model's cost model."""
    resolved_budget, strategy_obj = validate_request(prompt, budget, strategy, answer_format, options)
    check_models = getattr(strategy_obj, "check_models", None)
    if check_models is not None:  # a strategy that names models (route's policy) refuses unknown ones now
        check_models(models)
    check_budget_fits_profile(resolved_budget, target.profile)
    unpriced = [name for name, each in models.items() if each.cost_model is None]
    if resolved_budget.cost is not None and unpriced:
        raise BudgetError(
            f"Budget(cost=...) needs a cost model, and {', '.join(unpriced)}'s config is not on this machine; "
            "pass Reasoner(cost_model=reasoner.cost.CostModel.from_config(...))"
        )
    return resolved_budget, strategy_obj


def check_prompt(prompt: object) -> None:
    """Refuse a prompt that is not text, is empty, or is not valid Unicode (lone surrogates, which
    is what undecodable bytes on a command line become)."""
    if not isinstance(prompt, str):
        raise PromptError(f"the prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise PromptError("the prompt is empty; pass the question to solve")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PromptError(
            f"the prompt is not valid UTF-8 text (an undecodable byte or lone surrogate at character {exc.start}); "
            "pass UTF-8 text"
        ) from None


def check_budget_fits_profile(budget: Budget, profile: ModelProfile) -> None:
    """Refuse budgets too small for the least answer the model family can give."""
    least = profile.min_answer_tokens
    if budget.tokens < least:
        raise BudgetError(
            f"budget of {budget.tokens} tokens is below the {least} tokens a {profile.family} answer needs; raise it"
        )
    if budget.answer is not None and budget.answer < least:
        raise BudgetError(
            f"answer budget of {budget.answer} tokens is below the {least} tokens a {profile.family} answer needs"
        )
