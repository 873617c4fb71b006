"""The checks of a request that need no engine, and the split of a batch's budget between its prompts.

They run before any model work: the CLI calls `validate_request` before it provisions a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reasoner.answers import ANSWER_FORMATS
from reasoner.budget import Budget, BudgetLike, as_budget
from reasoner.errors import BudgetError, InputError, PromptError, StrategyError
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


def split_batch_budget(
    prompts: Sequence[str], budget: BudgetLike | Sequence[BudgetLike], per_prompt: bool
) -> list[Budget]:
    """Per-prompt budgets for a batch: given one each, the same for all, or a shared one split evenly."""
    if isinstance(prompts, str):
        raise InputError("prompts must be a list of strings, not one string; use solve() for one prompt")
    if not prompts:
        raise InputError("prompts is empty; pass at least one prompt")
    if isinstance(budget, Sequence):
        budgets = [as_budget(item) for item in budget]
        if len(budgets) != len(prompts):
            raise BudgetError(f"got {len(budgets)} budgets for {len(prompts)} prompts; pass one per prompt")
        return budgets
    shared = as_budget(budget)
    if per_prompt:
        return [shared] * len(prompts)
    count = len(prompts)
    if shared.tokens < count:
        raise BudgetError(f"a batch budget of {shared.tokens} tokens cannot give each of {count} prompts a token")
    shares = []
    for index in range(count):
        tokens = shared.tokens // count + (1 if index < shared.tokens % count else 0)
        scale = tokens / shared.tokens
        shares.append(
            Budget(
                tokens=tokens,
                thinking=None if shared.thinking is None else int(shared.thinking * scale),
                answer=None if shared.answer is None else int(shared.answer * scale),
                samples=shared.samples,
                deadline_s=shared.deadline_s,
                cost=None if shared.cost is None else shared.cost * scale,
            )
        )
    return shares
