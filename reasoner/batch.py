"""A batch of solves: how a shared budget is split between its prompts, and running them together.

`Reasoner.asolve_many` runs every prompt's solve as a task on one engine, so the engine batches
them; when one fails, the others are cancelled before the error goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

from reasoner.budget import Budget, BudgetLike, as_budget
from reasoner.errors import BudgetError, InputError
from reasoner.solution import Solution


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


async def gather_solutions(calls: Sequence[Coroutine[Any, Any, Solution]]) -> list[Solution]:
    """Run the solves concurrently, in order; when one raises, cancel the rest and wait for them first."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
