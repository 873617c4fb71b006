"""`latent_switch`'s options, and the switch rule they name (see `strategies.latent_switch`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from reasoner import StrategyOptions
from reasoner.strategy import AppliesWhen
from strategies.switch_rules import FixedMode, SwiReasoning, SwitchRule, ThinkRouter

_SOFT_RULES = AppliesWhen("rule", ("swireasoning", "thinkrouter", "latent"))
_SWIREASONING = AppliesWhen("rule", ("swireasoning",))
_COLD_STOP_RULES = AppliesWhen("rule", ("thinkrouter", "latent"))


class LatentSwitchOptions(StrategyOptions):
    """How thinking switches between latent soft tokens and explicit tokens."""

    rule: Literal["swireasoning", "thinkrouter", "latent", "explicit"] = Field(
        default="swireasoning",
        description="Switch rule: swireasoning (entropy trend per block), thinkrouter (per-step confidence), "
        "or a fixed mode (latent-only soft thinking, explicit-only thinking) for comparison.",
    )
    top_k: Annotated[int | None, _SOFT_RULES] = Field(
        default=None,
        ge=1,
        description="Tokens mixed into a soft token (and logprobs read per step); None: all the backend returns "
        "(its max_logprobs). The reference mixes the whole distribution; an engine step returns at most that many.",
    )
    top_p: Annotated[float, _SOFT_RULES] = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Probability mass of the top-k kept in the mix; 1.0 keeps all of it, as the reference's "
        "whole-distribution mix does (Soft Thinking's scripts use 0.95 with top_k=10).",
    )
    threshold: Annotated[float, AppliesWhen("rule", ("thinkrouter",))] = Field(
        default=0.6, gt=0.0, lt=1.0, description="ThinkRouter: max probability at or above which a step goes latent."
    )
    max_switches: Annotated[int | None, _SWIREASONING] = Field(
        default=8,
        ge=1,
        description="SwiReasoning: C_max, the latent->explicit switches before the cap acts; from the C_max-th to "
        "the 2*C_max-th each injects the close delimiter and the model goes on, the one past 2*C_max forces the "
        "answer (None: no cap).",
    )
    forced_answer_tokens: Annotated[int, _SWIREASONING] = Field(
        default=32,
        ge=1,
        description="SwiReasoning: most tokens of the answer the cap forces (the reference's 32); also held back "
        "from the answer budget while the model goes on after an injected close.",
    )
    window: Annotated[int, _SWIREASONING] = Field(
        default=32,
        ge=1,
        description="SwiReasoning: steps an explicit block lasts before rising entropy may send it back to latent "
        "(the dwell window; the reference uses 512 at 32k-token budgets). Latent->explicit needs no wait.",
    )
    close_mix: Annotated[float, _SWIREASONING] = Field(
        default=0.3,
        ge=0.0,
        lt=1.0,
        description="SwiReasoning: weight of the close-thinking embedding in the first explicit token after a "
        "latent block, decaying to 0 over the thinking budget (the reference's 1 - beta_0).",
    )
    explicit_math: Annotated[bool, _SWIREASONING] = Field(
        default=True,
        description="SwiReasoning: in a latent block, feed a step whose token spells math (digits, single letters, "
        "operators, LaTeX commands) as that token instead of the soft mixture, as the reference does.",
    )
    multi_token_mix: Annotated[bool, _SWIREASONING] = Field(
        default=False,
        description="SwiReasoning: also mix a delimiter of several tokens (a prompted </think>), token by token into "
        "the rows after a switch; a one-token delimiter is always mixed.",
    )
    open_mix: Annotated[float, _SWIREASONING] = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="SwiReasoning: weight of the open-thinking embedding in the first soft token after an "
        "explicit block, decaying likewise (the reference's 1 - alpha_0).",
    )
    cold_stop_entropy: Annotated[float, _COLD_STOP_RULES] = Field(
        default=0.01,
        gt=0.0,
        description="ThinkRouter/latent: Cold Stop's entropy threshold in nats (Soft Thinking's 0.01).",
    )
    cold_stop_steps: Annotated[int | None, _COLD_STOP_RULES] = Field(
        default=256,
        ge=1,
        description="ThinkRouter/latent: consecutive steps below cold_stop_entropy that end thinking (Soft "
        "Thinking's 256); None: no Cold Stop.",
    )
    start_mode: Annotated[Literal["latent", "explicit"], AppliesWhen("rule", ("swireasoning", "thinkrouter"))] = Field(
        default="latent", description="Mode of the first block."
    )
    answer_tokens: int = Field(
        default=48, ge=1, description="Answer budget when the Budget sets no answer/thinking split."
    )
    temperature: float = Field(default=0.0, ge=0.0, description="Sampling temperature of explicit tokens; 0 is greedy.")


def make_rule(options: LatentSwitchOptions) -> SwitchRule:
    """The switch rule the options name."""
    if options.rule == "swireasoning":
        return SwiReasoning(options.start_mode, options.max_switches, options.window)
    if options.rule == "thinkrouter":
        return ThinkRouter(options.threshold, options.start_mode)
    return FixedMode(options.rule)
