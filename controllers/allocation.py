"""Batch allocation: split a total token budget across prompts by expected marginal gain.

Every prompt starts at the cheapest point of its bin's accuracy-vs-budget curve. Then, as
long as tokens are left, the upgrade with the largest expected accuracy gain per extra token
(to any higher point of the prompt's curve that still fits) is taken. Tokens no upgrade can
use are spread evenly over the prompts, so flat curves give a uniform split. The estimator
tokens already spent come off the total first, and the shares never sum past it. When the
total cannot pay every prompt its bin's cheapest point, what is left is split evenly (each
prompt then runs the cheapest configuration there is with its share).
"""

from __future__ import annotations

from collections.abc import Sequence

from controllers.policy import Choice
from reasoner.errors import BudgetError


def allocate(
    bins: Sequence[str],
    curves: dict[str, list[Choice]],
    total: int,
    spent: Sequence[int] | None = None,
) -> list[int]:
    """Tokens per prompt beyond what it `spent` on estimation; they sum to at most `total - sum(spent)`."""
    if not bins:
        raise BudgetError("no prompts to allocate a budget to; pass at least one prompt")
    spent_tokens = list(spent) if spent is not None else [0] * len(bins)
    if len(spent_tokens) != len(bins):
        raise BudgetError(f"got {len(spent_tokens)} estimation costs for {len(bins)} prompts")
    levels = [0] * len(bins)
    shares = [curves[name][0].budget for name in bins]
    left = total - sum(spent_tokens) - sum(shares)
    if left < 0:
        if total - sum(spent_tokens) < len(bins):
            raise BudgetError(
                f"{total - sum(spent_tokens)} tokens are left for {len(bins)} prompts after estimation; "
                "raise the batch budget"
            )
        return _even(total - sum(spent_tokens), len(bins))
    while True:
        best: tuple[float, int, int] | None = None
        for index, name in enumerate(bins):
            curve = curves[name]
            current = curve[levels[index]]
            for level in range(levels[index] + 1, len(curve)):
                extra = curve[level].budget - current.budget
                gain = (curve[level].accuracy or 0.0) - (current.accuracy or 0.0)
                if extra <= 0 or extra > left or gain <= 0:
                    continue
                rate = gain / extra
                if best is None or rate > best[0]:
                    best = (rate, index, level)
        if best is None:
            break
        _, index, level = best
        extra = curves[bins[index]][level].budget - shares[index]
        levels[index], shares[index] = level, shares[index] + extra
        left -= extra
    return [share + extra for share, extra in zip(shares, _even(left, len(bins)), strict=True)]


def _even(tokens: int, count: int) -> list[int]:
    """`tokens` split over `count` prompts as evenly as integers allow."""
    return [tokens // count + (1 if index < tokens % count else 0) for index in range(count)]


def least_batch_budget(bins: Sequence[str], curves: dict[str, list[Choice]], spent: Sequence[int]) -> int:
    """The smallest total that pays every prompt's cheapest configuration plus its estimation."""
    return sum(spent) + sum(curves[name][0].budget for name in bins)
