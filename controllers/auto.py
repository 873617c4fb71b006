"""`auto`: estimate the prompt's difficulty, then run the strategy and budget its bin calls for.

Compute-optimal scaling (Snell et al., 2024) and DiffAdapt: the best strategy and budget
depend on how hard the prompt is. An estimator (`pilot`, `self_eval`, `probe`) spends a few
tokens of the solve's budget on a difficulty in [0, 1]; the policy (`policy_file`, else the
built-in default) maps its bin to a strategy, options and budget; that strategy runs on the
same engine, ledger and trace, capped at the chosen budget.

In a batch (`solve_many(..., strategy="auto")` with a shared budget) `allocate_batch` first
estimates every prompt, then splits what is left by marginal gain on the policy's curves
(`controllers.allocation`); each solve then charges its estimate and runs its allocation.

Metrics: `difficulty`, `difficulty_bin`, `estimator`, `estimator_tokens`, `chosen_strategy`,
`chosen_budget`, and the chosen strategy's own metrics prefixed with `inner_`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from controllers.allocation import allocate
from controllers.estimators import ESTIMATOR_NAMES, Estimate, Estimator, make_estimator
from controllers.policy import Choice, default_policy, load_policy
from controllers.probe import load_probe
from reasoner import Budget, BudgetError, Outcome, Session, Strategy, StrategyOptions, get_strategy
from reasoner.api import Reasoner, check_budget_fits_profile


class AutoOptions(StrategyOptions):
    """Which estimator and which policy; the `prior_*` fields are set by batch allocation."""

    estimator: str = Field(default="pilot", description=f"Difficulty estimator: one of {', '.join(ESTIMATOR_NAMES)}.")
    policy_file: str | None = Field(
        default=None, description="Policy JSON from `reasoner calibrate`; default: built in."
    )
    probe_file: str | None = Field(default=None, description="Trained probe JSON, for estimator='probe'.")
    prior_difficulty: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Difficulty already estimated (batch allocation sets it)."
    )
    prior_estimator_tokens: int = Field(default=0, ge=0, description="Tokens that prior estimate generated.")
    prior_estimator_requests: int = Field(default=0, ge=0, description="Requests that prior estimate made.")
    allocated_budget: int | None = Field(
        default=None, ge=1, description="Tokens batch allocation gave the chosen strategy."
    )


class Auto(Strategy):
    """Difficulty estimate -> policy bin -> the bin's strategy and budget, on the same session."""

    name = "auto"
    Options = AutoOptions
    options: AutoOptions

    def __init__(self, options: StrategyOptions):
        super().__init__(options)
        self.policy = load_policy(self.options.policy_file) if self.options.policy_file else default_policy()
        self.estimator = _estimator(self.options)

    async def run(self, session: Session, prompt: str) -> Outcome:
        least = session.profile.min_answer_tokens + (
            0 if self.options.prior_difficulty is not None else self.estimator.cost_cap
        )
        if session.remaining < least:
            raise BudgetError(
                f"auto needs at least {least} tokens (estimator {self.estimator.name!r} + the least answer), "
                f"the budget has {session.remaining}; raise it or pick a cheaper estimator"
            )
        estimate = await self._estimate(session, prompt)
        bin_name = self.policy.bin_of(estimate.difficulty)
        available = session.remaining
        if self.options.allocated_budget is not None:
            choice = self.policy.point_at(bin_name, min(self.options.allocated_budget, available))
        else:
            choice = self.policy.choose(bin_name, available)
        chosen = Choice(choice.strategy, min(choice.budget, available), choice.options)
        outcome = await run_chosen(session, prompt, chosen, estimate.node)
        metrics: dict[str, Any] = {
            "difficulty": round(estimate.difficulty, 4),
            "difficulty_bin": bin_name,
            "estimator": estimate.estimator,
            "estimator_tokens": estimate.tokens,
            "chosen_strategy": chosen.strategy,
            "chosen_budget": chosen.budget,
        }
        metrics.update({f"inner_{key}": value for key, value in outcome.metrics.items()})
        return Outcome(text=outcome.text, answer=outcome.answer, metrics=metrics)

    async def _estimate(self, session: Session, prompt: str) -> Estimate:
        if self.options.prior_difficulty is None:
            return await self.estimator.estimate(session, prompt)
        charged = self.options.prior_estimator_tokens
        ledger = session.ledger
        if charged > ledger.remaining:
            raise BudgetError(f"the prior estimate's {charged} tokens exceed the {ledger.remaining} left")
        ledger.generated_tokens += charged
        ledger.generated_by_phase["estimation"] += charged
        ledger.requests += self.options.prior_estimator_requests
        node = session.trace.add(
            "estimate",
            phase="estimation",
            estimator=self.estimator.name,
            difficulty=self.options.prior_difficulty,
            batch=True,
        )
        session.trace.update(node, tokens=charged)
        return Estimate(self.estimator.name, self.options.prior_difficulty, charged, {}, node)

    @classmethod
    async def allocate_batch(
        cls, reasoner: Reasoner, prompts: Sequence[str], budget: Budget, answer_format: str, options: dict[str, Any]
    ) -> list[tuple[Budget, dict[str, Any]]]:
        """Estimate every prompt, split `budget.tokens` by marginal gain, and say what each solve runs with."""
        strategy = cls.from_options(options)
        assert isinstance(strategy, Auto)
        policy, estimator = strategy.policy, strategy.estimator
        cheapest = {name: policy.curves[name][0].budget for name in policy.curves}
        least = estimator.cost_cap + max(min(cheapest.values()), reasoner.profile.min_answer_tokens)
        if budget.tokens < least * len(prompts):
            raise BudgetError(
                f"a batch budget of {budget.tokens} tokens is below {least} tokens per prompt (estimation "
                f"{estimator.cost_cap} + least configuration) times {len(prompts)} prompts; raise it to "
                f"{least * len(prompts)}"
            )
        await reasoner.backend.start()
        tokenizer = reasoner.backend.tokenizer()
        sessions = [
            Session(reasoner.backend, tokenizer, reasoner.profile, Budget(tokens=estimator.cost_cap), answer_format)
            for _ in prompts
        ]
        estimates = await asyncio.gather(
            *(estimator.estimate(session, prompt) for session, prompt in zip(sessions, prompts, strict=True))
        )
        bins = [policy.bin_of(estimate.difficulty) for estimate in estimates]
        shares = allocate(bins, policy.curves, budget.tokens, [estimate.tokens for estimate in estimates])
        plans = []
        for estimate, session, share in zip(estimates, sessions, shares, strict=True):
            plans.append(
                (
                    Budget(tokens=estimate.tokens + share, samples=budget.samples, deadline_s=budget.deadline_s),
                    {
                        "prior_difficulty": estimate.difficulty,
                        "prior_estimator_tokens": estimate.tokens,
                        "prior_estimator_requests": session.ledger.requests,
                        "allocated_budget": share,
                    },
                )
            )
        return plans


async def run_chosen(session: Session, prompt: str, chosen: Choice, parent: int | None) -> Outcome:
    """Run `chosen` on the session's engine, ledger and trace, spending at most `chosen.budget`.

    The strategy sees a session whose budget is `chosen.budget`; the tokens of the solve's
    budget beyond it are held back in the shared ledger while it runs.
    """
    budget = Budget(tokens=chosen.budget, samples=session.budget.samples, deadline_s=session.budget.deadline_s)
    check_budget_fits_profile(budget, session.profile)
    strategy = get_strategy(chosen.strategy).from_options(chosen.options)
    inner = Session(session.backend, session.tokenizer, session.profile, budget, session.answer_format, session.ledger)
    inner.trace = session.trace
    # Same events and same in-flight set: a cancelled solve aborts the chosen strategy's requests too.
    inner.on_event, inner.running = session.on_event, session.running
    first_node = session.trace.graph.number_of_nodes()
    with session.ledger.hold(session.remaining - chosen.budget):
        outcome = await strategy.run(inner, prompt)
    if parent is not None:
        graph = session.trace.graph
        for node in range(first_node, graph.number_of_nodes()):
            if graph.in_degree(node) == 0:
                session.trace.link(parent, node, "spawn")
    return outcome


def _estimator(options: AutoOptions) -> Estimator:
    probe = load_probe(options.probe_file) if options.probe_file else None
    return make_estimator(options.estimator, probe)
