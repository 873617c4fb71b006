"""`mode`: a thinking dial with four settings (ThinkDial; gpt-oss reasoning effort; Qwen3's switch).

`off` answers without a thinking block, through the profile's native no-thinking control
(Qwen3 `enable_thinking=False`, gpt-oss low effort) or a direct prompt. `high`, `medium`
and `low` think through the `elastic` mechanism with a thinking budget, plus the family's
native effort control where it has one (`ModelProfile.effort_kwarg`).

Thinking budgets, from the elastic split of the solve's budget (thinking T, answer A):
`high` thinks up to T (the model's natural length, capped). `medium` and `low` get 50%
and 25% of THIS prompt's estimated high-mode thinking length, capped at T: the calibration
(`strategies.mode_calibration`) predicts it from the question's length, so a short easy
question is cut relative to its own short thinking and a long one relative to its own. A
`high_thinking_tokens` option overrides the estimate; a model never calibrated gets 50% and
25% of T. The answer keeps A.

What remains different from ThinkDial: its model is trained (budget-mode RL) to reason
more concisely in medium/low and still conclude, so its reduction changes HOW it thinks.
Here the model is not trained for modes: medium/low cap its thinking and force the answer
(elastic's mechanism), so the shorter thought is a truncated high-mode thought, and the
per-prompt length is an estimate from the question, not the model's own plan.

Metrics: `mode`, `thinking_budget`, `expected_high_tokens` (the estimate the reduction is
relative to; None in high/off), `high_length_source` (`option`, `per_prompt`, `median`,
`budget`), and elastic's (`thinking_tokens`, `answer_tokens`, `thinking_cut`, `extensions`,
`answer_budget`); `off` reports zero thinking.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from pydantic import Field

from reasoner import Outcome, Session, Strategy, StrategyOptions, register_strategy
from reasoner.strategy import AppliesWhen
from strategies.direct import Direct, DirectOptions
from strategies.elastic import ThinkingPlan, run_elastic, split_budget
from strategies.mode_calibration import load_mode_calibration

ModeName = Literal["high", "medium", "low", "off"]
MODE_SHARES: dict[str, float] = {"high": 1.0, "medium": 0.5, "low": 0.25}


class ModeOptions(StrategyOptions):
    """The dial setting and sampling."""

    mode: ModeName = Field(default="high", description="Thinking level: high, medium, low or off.")
    high_thinking_tokens: Annotated[int | None, AppliesWhen("mode", ("medium", "low"))] = Field(
        default=None,
        ge=1,
        description="medium/low: the model's high-mode thinking length they take their share of; overrides the "
        "stored calibration.",
    )
    temperature: float = Field(default=0.0, ge=0.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")


def mode_thinking_budget(mode: str, thinking_budget: int, high_thinking_tokens: int | None) -> int:
    """The thinking budget of `mode` given the split's thinking budget and the calibrated high length."""
    if mode == "high" or thinking_budget == 0:
        return thinking_budget
    reference = thinking_budget if high_thinking_tokens is None else min(high_thinking_tokens, thinking_budget)
    return max(1, round(reference * MODE_SHARES[mode]))


@register_strategy
class Mode(Strategy):
    """Think at one of four levels within the budget."""

    name = "mode"
    Options = ModeOptions
    options: ModeOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        mode = self.options.mode
        if mode == "off":
            return await self._answer_directly(session, prompt)
        thinking_budget, answer_budget = split_budget(session.budget, session.profile)
        high_length, source = None, "budget"
        if mode != "high":
            high_length, source = await self._expected_high_tokens(session, prompt)
        plan = ThinkingPlan(
            thinking_budget=mode_thinking_budget(mode, thinking_budget, high_length),
            answer_budget=answer_budget,
            effort=mode,
            temperature=self.options.temperature,
            top_p=self.options.top_p,
        )
        outcome = await run_elastic(session, prompt, plan)
        outcome.metrics.update(mode=mode, expected_high_tokens=high_length, high_length_source=source)
        return outcome

    async def _expected_high_tokens(self, session: Session, prompt: str) -> tuple[int | None, str]:
        """This prompt's expected high-mode thinking length and where it came from."""
        if self.options.high_thinking_tokens is not None:
            return self.options.high_thinking_tokens, "option"
        calibration = await asyncio.to_thread(load_mode_calibration, session.backend.capabilities.name)
        if calibration is None:
            return None, "budget"
        source = "median" if calibration.length_slope is None else "per_prompt"
        return calibration.expected_high_tokens(len(session.encode(prompt))), source

    async def _answer_directly(self, session: Session, prompt: str) -> Outcome:
        direct = Direct(DirectOptions(temperature=self.options.temperature, top_p=self.options.top_p))
        outcome = await direct.run(session, prompt)
        outcome.metrics.update(
            mode="off",
            thinking_budget=0,
            expected_high_tokens=None,
            high_length_source="budget",
            thinking_tokens=0,
            answer_tokens=session.ledger.generated_by_phase["answer"],
            thinking_cut=False,
            extensions=0,
            answer_budget=session.budget.tokens,
        )
        return outcome
