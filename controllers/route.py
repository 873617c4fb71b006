"""`route`: a difficulty estimate picks the model, and the strategy and budget on it.

Routing between a strong and a weak model by predicted difficulty (RouteLLM, Ong et al. 2024;
optillm's `router`), joined to compute-optimal allocation (Snell et al., 2024): `route` is
`auto` (`controllers.auto`) on a routing policy, one whose choices name a model of the Reasoner's
set. `reasoner calibrate RECORDS --model small=... --model large=...` learns it from eval records
of each model: every configuration is measured per model, and each difficulty bin gets the
cheapest in cost (eFLOPs) within one standard error of the most accurate
(`controllers.policy_learning`), so an easy bin can go to the small model and a hard one to the
large. The estimate runs on the solve's own model (the Reasoner's default, as in calibration); the
chosen configuration runs on its model in a sub-session of the same ledger, trace and budget
(tokens and cost cap all models together). Bins, degrading under a tight token or cost budget,
saturation caps and batch allocation are auto's.

There is no built-in routing policy (model names are the user's): `policy_file` is required. A
policy naming a model the Reasoner does not have is a `ModelError` before any token is spent.

Metrics: auto's (`difficulty`, `difficulty_bin`, `chosen_strategy`, `chosen_budget`, ...) and
`chosen_model`, the name of the model the chosen configuration ran on.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from controllers.auto import Auto, AutoOptions
from controllers.policy import Choice
from reasoner import Session, StrategyError, StrategyOptions, register_strategy


class RouteOptions(AutoOptions):
    """auto's options; the policy is a routing policy and must be given."""

    policy_file: str | None = Field(
        default=None,
        description="Routing policy JSON from `reasoner calibrate --model NAME=MODEL ...` (required).",
        json_schema_extra={"operator_only": True},
    )


@register_strategy
class Route(Auto):
    """Difficulty estimate -> policy bin -> the bin's model, strategy and budget, in a sub-session."""

    name = "route"
    Options = RouteOptions
    options: RouteOptions

    def __init__(self, options: StrategyOptions):
        assert isinstance(options, RouteOptions)
        if options.policy_file is None:
            raise StrategyError(
                "route needs policy_file: a routing policy from `reasoner calibrate RECORDS --model small=MODEL "
                "--model large=MODEL --out FILE` (there is no built-in one; a server's operator sets it with "
                "`reasoner serve --strategy-option route.policy_file=FILE`)"
            )
        super().__init__(options)

    def extra_metrics(self, session: Session, chosen: Choice) -> dict[str, Any]:
        return {"chosen_model": chosen.model if chosen.model is not None else session.model}
