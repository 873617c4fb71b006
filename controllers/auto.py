"""`auto`: estimate the prompt's difficulty, then run the strategy and budget its bin calls for.

Compute-optimal scaling (Snell et al., 2024) and DiffAdapt: the best strategy and budget
depend on how hard the prompt is. An estimator (`pilot`, `self_eval`, `probe`, `hidden`)
gives a difficulty in [0, 1], paid from the solve's budget (`hidden` generates nothing); the
policy (`policy_file` from `reasoner calibrate`, else the built-in one: `reasoner calibrate`'s
policy for the embedded model on the records shipped in `controllers/data/`, with the `probe`
estimator; see `controllers.policy`) maps its bin to the most accurate configuration within
noise that fits the budget left; that strategy runs in a sub-session of the same engine,
ledger and trace, capped at the chosen budget.

Allocation is in cost where the policy was measured in cost (`reasoner calibrate` on records
that carry `usage.cost`): the cheapest configuration within one standard error of the best is
the cheapest in eFLOPs, and under `Budget(cost=...)` a configuration fits only when its measured
mean cost fits the cost left. Without a cost model it is all in tokens.

Tight budgets degrade instead of failing after spending: the estimate is skipped (estimator
`none`, the middle bin) when paying it would leave less than the cheapest configuration (in
tokens, and under a cost cap in cost: the estimate's worst case, every request its whole
`cost_cap` after the prompt), a chosen configuration that does not fit becomes the best curve
point that does, else `direct` with what is left, and a budget that cannot pay even the least
answer (in tokens or in cost) is refused before any token is spent.

A choice may name a model of the Reasoner's set (`Choice.model`, a routing policy: see
`controllers.route`); it then runs on that model (`Session.on_model`), and a policy naming a
model the solve does not have is a `ModelError` before any token is spent (`check_models`).

In a batch (`solve_many(..., strategy="auto")` with a shared budget) `allocate_batch` first
estimates every prompt (when the total pays it), then splits what is left by marginal gain on
the policy's curves (`controllers.allocation`; an even split when the curves' cheapest points
do not fit); each solve then charges its estimate to its own ledger and runs its allocation.

Metrics: `difficulty`, `difficulty_bin`, `estimator`, `estimator_tokens`,
`estimator_representation` (hidden: engine or input_embeddings), `estimate_skipped`,
`chosen_strategy`, `chosen_budget`, `configuration_degraded`, and the chosen strategy's own
metrics prefixed with `inner_`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any

from pydantic import Field

from controllers.allocation import allocate
from controllers.estimate import Estimate, Estimator
from controllers.estimators import ESTIMATOR_NAMES, EstimatorSpec, NoEstimator, make_estimator
from controllers.policy import Choice, Policy, default_policy, load_policy
from controllers.probe import load_probe
from reasoner import Budget, BudgetError, Outcome, Session, Strategy, StrategyError, StrategyOptions, get_strategy
from reasoner.api import Reasoner
from reasoner.errors import ModelError
from reasoner.profiles import ModelProfile
from reasoner.request_checks import check_budget_fits_profile


class AutoOptions(StrategyOptions):
    """Which estimator and which policy; the `prior_*` fields are set by batch allocation."""

    estimator: str | None = Field(
        default=None,
        description=f"Difficulty estimator: one of {', '.join(ESTIMATOR_NAMES)}; default: the policy's, else pilot.",
    )
    policy_file: str | None = Field(
        default=None,
        description="Policy JSON from `reasoner calibrate`; default: the built-in one (for the embedded model).",
        json_schema_extra={"operator_only": True},
    )
    probe_file: str | None = Field(
        default=None,
        description="Trained probe JSON, for estimator='probe' or 'hidden'.",
        json_schema_extra={"operator_only": True},
    )
    prior_estimator: str | None = Field(default=None, description="Estimator of the prior estimate (batch).")
    prior_difficulty: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Difficulty already estimated (batch allocation sets it)."
    )
    prior_estimator_tokens: int = Field(default=0, ge=0, description="Tokens that prior estimate generated.")
    prior_estimator_requests: int = Field(default=0, ge=0, description="Requests that prior estimate made.")
    prior_estimator_cost: int | None = Field(
        default=None, ge=0, description="eFLOPs that prior estimate cost (None: the model has no cost model)."
    )
    allocated_budget: int | None = Field(
        default=None, ge=1, description="Tokens batch allocation gave the chosen strategy."
    )


class Auto(Strategy):
    """Difficulty estimate -> policy bin -> the bin's strategy and budget, in a sub-session."""

    name = "auto"
    Options = AutoOptions
    options: AutoOptions

    def __init__(self, options: StrategyOptions):
        super().__init__(options)
        self.policy = load_policy(self.options.policy_file) if self.options.policy_file else default_policy()
        self.spec = estimator_spec(self.options, self.policy)
        self.estimator = make_estimator(self.spec)

    def cheapest_configuration(self, profile: ModelProfile) -> int:
        """Tokens of the cheapest configuration the policy knows (at least the least answer)."""
        cheapest = min(point.budget for curve in self.policy.curves.values() for point in curve)
        return max(cheapest, profile.min_answer_tokens)

    def affordable_estimator(self, available: int, profile: ModelProfile, cost_room: float | None = None) -> Estimator:
        """The configured estimator when paying it leaves the cheapest configuration, else `none`.

        `cost_room` (under a cost cap, `Auto.cost_room`'s figure): below zero the estimate is skipped too.
        """
        if available - self.estimator.cost_cap >= self.cheapest_configuration(profile) and (cost_room or 0.0) >= 0:
            return self.estimator
        return NoEstimator()

    def check_models(self, models: Collection[str]) -> None:
        """Refuse a policy that runs on a model not in `models` (a `ModelError` naming both lists)."""
        unknown = [name for name in self.policy.routed_models() if name not in models]
        if unknown:
            raise ModelError(
                f"the {self.policy.source} policy routes to model(s) {', '.join(unknown)}, which this solve does not "
                f"have (its models: {', '.join(models)}); name the Reasoner's models as the policy does, or "
                "calibrate a policy on these"
            )

    def cost_room(self, session: Session, prompt: str) -> float | None:
        """Under a cost cap: the cost left after the estimate's worst case and the cheapest configuration's.

        The least answer's cost when no curve was measured in cost. None without a cost cap.
        A budget whose cost cannot pay even the least answer is refused here (`BudgetError`).
        """
        cost_left, cost_model = session.ledger.cost_left, session.cost_model
        if cost_left is None or cost_model is None:
            return None
        text = session.profile.build_prompt(
            session.tokenizer, prompt, thinking=False, answer_format=session.answer_format
        )
        prompt_tokens = len(session.encode(text))
        least = cost_model.eflops(prompt_tokens, 0, session.profile.min_answer_tokens)
        if least > cost_left:
            raise BudgetError(
                f"{self.name} needs at least {least:.4g} eFLOPs (the least answer on {session.model}), the budget "
                f"has {cost_left:.4g} left; raise Budget(cost=...)"
            )
        estimator = self.estimator
        worst = estimator.requests * cost_model.eflops(prompt_tokens + estimator.cost_cap, 0, estimator.cost_cap)
        measured = [curve[0].mean_cost for curve in self.policy.curves.values() if curve[0].mean_cost is not None]
        return cost_left - worst - min(measured, default=least)

    async def run(self, session: Session, prompt: str) -> Outcome:
        self.check_models(session.models)
        least = session.profile.min_answer_tokens
        if session.remaining < least:
            raise BudgetError(
                f"{self.name} needs at least {least} tokens (the least answer), the budget has {session.remaining}; "
                "raise it"
            )
        estimate, skipped = await self._estimate(session, prompt, self.cost_room(session, prompt))
        bin_name = self.policy.bin_of(estimate.difficulty)
        available, cost_left = session.remaining, session.ledger.cost_left
        if self.options.allocated_budget is not None:
            choice = self.policy.point_at(bin_name, min(self.options.allocated_budget, available), cost_left)
        else:
            choice = self.policy.choose(bin_name, available, cost_left)
        chosen = replace(choice, budget=max(least, min(choice.budget, available)))
        chosen, outcome, degraded = await run_degrading(session, prompt, chosen, estimate.node)
        metrics: dict[str, Any] = {
            "difficulty": round(estimate.difficulty, 4),
            "difficulty_bin": bin_name,
            "estimator": estimate.estimator,
            "estimator_tokens": estimate.tokens,
            "estimator_representation": estimate.representation,
            "estimate_skipped": skipped,
            "chosen_strategy": chosen.strategy,
            "chosen_budget": chosen.budget,
            "configuration_degraded": degraded,
        }
        metrics.update(self.extra_metrics(session, chosen))
        metrics.update({f"inner_{key}": value for key, value in outcome.metrics.items()})
        return Outcome(text=outcome.text, answer=outcome.answer, metrics=metrics)

    def extra_metrics(self, session: Session, chosen: Choice) -> dict[str, Any]:
        """Metrics a variant adds to auto's (`route`: the model chosen)."""
        return {}

    async def _estimate(self, session: Session, prompt: str, cost_room: float | None) -> tuple[Estimate, bool]:
        """The estimate (charged to the session) and whether the configured one was skipped."""
        if self.options.prior_difficulty is None:
            estimator = self.affordable_estimator(session.remaining, session.profile, cost_room)
            return await estimator.estimate(session, prompt), estimator is not self.estimator
        charged = self.options.prior_estimator_tokens
        name = self.options.prior_estimator or self.estimator.name
        session.ledger.charge(
            charged, "estimation", self.options.prior_estimator_requests, cost=self.options.prior_estimator_cost
        )
        node = session.trace.add(
            "estimate", phase="estimation", estimator=name, difficulty=self.options.prior_difficulty, batch=True
        )
        session.trace.update(node, tokens=charged)
        return Estimate(name, self.options.prior_difficulty, charged, {}, node), name != self.estimator.name

    @classmethod
    async def allocate_batch(
        cls, reasoner: Reasoner, prompts: Sequence[str], budget: Budget, answer_format: str, options: dict[str, Any]
    ) -> list[tuple[Budget, dict[str, Any]]]:
        """Estimate every prompt, split `budget.tokens` by marginal gain, and say what each solve runs with.

        Refused before any token is spent when the total cannot pay each prompt the least
        answer; the estimate is skipped when paying it would leave less than the cheapest
        configuration per prompt.
        """
        strategy = cls.from_options(options)
        assert isinstance(strategy, Auto)
        strategy.check_models(reasoner.models)
        policy, profile, count = strategy.policy, reasoner.profile, len(prompts)
        least = profile.min_answer_tokens
        if budget.tokens < least * count:
            raise BudgetError(
                f"a batch budget of {budget.tokens} tokens cannot pay {count} prompts the least answer of "
                f"{least} tokens each; raise it to at least {least * count}"
            )
        per_prompt = budget.tokens // count
        estimator = strategy.affordable_estimator(per_prompt, profile)
        await reasoner.backend.start()
        tokenizer = reasoner.backend.tokenizer()
        estimate_budget = Budget(tokens=max(estimator.cost_cap, 1))
        priced = reasoner.cost_model
        sessions = [
            Session(reasoner.backend, tokenizer, profile, estimate_budget, answer_format, cost_model=priced)
            for _ in prompts
        ]
        estimates = await asyncio.gather(
            *(estimator.estimate(session, prompt) for session, prompt in zip(sessions, prompts, strict=True))
        )
        bins = [policy.bin_of(estimate.difficulty) for estimate in estimates]
        shares = allocate(bins, policy.curves, budget.tokens, [estimate.tokens for estimate in estimates])
        return [
            (
                Budget(
                    tokens=estimate.tokens + share,
                    samples=budget.samples,
                    deadline_s=budget.deadline_s,
                    cost=None if budget.cost is None else budget.cost / count,
                ),
                {
                    "prior_estimator": estimate.estimator,
                    "prior_difficulty": estimate.difficulty,
                    "prior_estimator_tokens": estimate.tokens,
                    "prior_estimator_requests": session.ledger.requests,
                    "prior_estimator_cost": session.ledger.cost if session.ledger.priced else None,
                    "allocated_budget": share,
                },
            )
            for estimate, session, share in zip(estimates, sessions, shares, strict=True)
        ]


def estimator_spec(options: AutoOptions, policy: Policy) -> EstimatorSpec:
    """The estimator `auto` runs: the policy's (its scale), unless another is named, which is an error."""
    learned = policy.estimator
    name = options.estimator or (learned.name if learned is not None else "pilot")
    if name not in ESTIMATOR_NAMES:
        raise StrategyError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATOR_NAMES)}")
    if learned is not None and name != learned.name:
        raise StrategyError(
            f"the {policy.source} policy was learned on the {learned.name!r} estimator's scores, not {name!r}; "
            f"pass estimator={learned.name!r}, or calibrate with `reasoner calibrate --estimator {name}` and pass "
            "its policy_file"
        )
    probe = load_probe(options.probe_file) if options.probe_file else (learned.probe if learned else None)
    if name == "hidden" and probe is None:
        raise StrategyError(
            "the hidden estimator needs a trained probe; run `reasoner calibrate --estimator hidden` and pass "
            "its policy_file (or a probe_file)"
        )
    if learned is None:
        return EstimatorSpec(name, probe)
    return EstimatorSpec(name, probe, learned.entropy_weight, learned.representation)


async def run_degrading(
    session: Session, prompt: str, chosen: Choice, parent: int | None
) -> tuple[Choice, Outcome, bool]:
    """Run `chosen`; when it refuses its budget before spending anything, run `direct` with it instead.

    A configuration refuses a budget it cannot use with `BudgetError` or, for options that do
    not fit the budget's share (e.g. pruning checkpoints past each sample), `StrategyError`.
    """
    ledger = session.ledger
    before = (ledger.generated_tokens, ledger.requests)
    try:
        return chosen, await run_chosen(session, prompt, chosen, parent), False
    except (BudgetError, StrategyError):
        if (ledger.generated_tokens, ledger.requests) != before or chosen.strategy == "direct":
            raise
    fallback = Choice("direct", chosen.budget, model=chosen.model)
    return fallback, await run_chosen(session, prompt, fallback, parent), True


async def run_chosen(session: Session, prompt: str, chosen: Choice, parent: int | None) -> Outcome:
    """Run `chosen` on its model in a sub-session of `chosen.budget` tokens; its segments hang under `parent`."""
    target = session.on_model(chosen.model) if chosen.model is not None else session
    check_budget_fits_profile(Budget(tokens=chosen.budget), target.profile)
    strategy = get_strategy(chosen.strategy).from_options(chosen.options)
    first_node = session.trace.graph.number_of_nodes()
    with target.sub_session(chosen.budget) as inner:
        outcome = await strategy.run(inner, prompt)
    if parent is not None:
        graph = session.trace.graph
        for node in range(first_node, graph.number_of_nodes()):
            if graph.in_degree(node) == 0:
                session.trace.link(parent, node, "spawn")
    return outcome
