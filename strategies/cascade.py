"""`cascade`: answer on the small model, escalate to the next model when its samples disagree.

Model cascades (FrugalGPT, Chen et al. 2023; RouteLLM's strong/weak pair): a cheap model
answers first, and a confidence signal decides whether that answer stands or the question goes
up to the next, larger model. The signal here is self-consistency agreement: each model draws
`n` samples and votes (`self_consistency`); a vote share of at least `min_agreement` accepts its
answer. The last model's answer stands whatever its agreement. With `hint=True` the next model
is told the answer the smaller one gave (off by default: a wrong hint can anchor it).

The models are a Reasoner's several (`Reasoner(models=...)`), cheapest first: `models` names the
chain, by default every model of the Reasoner in its order. Each stage runs in a sub-budget, an
even share of what is left over the stages left (of the tokens, and of the cost under a cost cap),
so a question the small model settles leaves the rest of the budget unspent, and a split vote
always leaves the next model its share. The budget (tokens, cost) caps all stages together.

Metrics:
- `answered_by`: the model whose answer stands; `escalations`: how many times the question went up.
- `vote_share`: the standing answer's share of its model's votes; `first_vote_share`: the first model's.
- `samples_used`: samples over all stages.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from reasoner import Outcome, Session, Strategy, StrategyError, register_strategy
from reasoner.solution import MetricValue
from reasoner.strategy import AppliesWhen
from strategies.self_consistency import SelfConsistency, SelfConsistencyOptions

HINT = "\n\nA smaller model answered {answer}; it may be wrong. Check it, then give your own final answer."


class CascadeOptions(SelfConsistencyOptions):
    """The chain of models, the agreement that accepts an answer, and every stage's sampling."""

    n: int = Field(default=4, ge=1, description="Samples each model votes with (capped by the budget).")
    models: list[str] | None = Field(
        default=None, min_length=2, description="Model names, cheapest first; default: the Reasoner's, in order."
    )
    min_agreement: float = Field(
        default=0.75, gt=0.0, le=1.0, description="Vote share at or above which a model's answer stands."
    )
    hint: bool = Field(default=False, description="Tell the next model the answer the smaller one gave.")
    hint_text: Annotated[str, AppliesWhen("hint", (True,))] = Field(
        default=HINT, description="What is appended to the question for the next model; `{answer}` is replaced."
    )


@register_strategy
class Cascade(Strategy):
    """Self-consistency on each model in turn, cheapest first, until one agrees with itself enough."""

    name = "cascade"
    Options = CascadeOptions
    options: CascadeOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        chain = self.options.models or list(session.models)
        if len(chain) < 2:
            raise StrategyError(
                f"cascade needs at least two models, cheapest first; this solve has {', '.join(chain)}: "
                "build Reasoner(models={'small': ..., 'large': ...})"
            )
        for name in chain:
            session.target(name)
        given = self.options.model_dump(include=set(SelfConsistencyOptions.model_fields), exclude_unset=True)
        sampling = SelfConsistencyOptions(**(given | {"n": self.options.n}))
        question = prompt
        shares: list[float] = []
        samples = 0
        outcome: Outcome | None = None
        for stage, name in enumerate(chain):
            stages_left = len(chain) - stage
            if outcome is not None and session.remaining < stages_left * session.profile.min_answer_tokens:
                break  # the rest of the budget cannot pay the next model a sample: the last answer stands
            share = session.remaining if stages_left == 1 else session.remaining // stages_left
            cost_left = session.ledger.cost_left
            cost_share = None if cost_left is None or stages_left == 1 else max(cost_left, 0) // stages_left
            with session.on_model(name).sub_session(share, cost_share) as stage_session:
                outcome = await SelfConsistency(sampling).run(stage_session, question)
            shares.append(float(outcome.metrics["vote_share"] or 0.0))
            samples += int(outcome.metrics["samples_used"] or 0)
            if shares[-1] >= self.options.min_agreement:
                break
            if self.options.hint and outcome.answer is not None:
                question = prompt + self.options.hint_text.replace("{answer}", outcome.answer)
        assert outcome is not None
        metrics: dict[str, MetricValue] = {
            "answered_by": chain[len(shares) - 1],
            "escalations": len(shares) - 1,
            "vote_share": shares[-1],
            "first_vote_share": shares[0],
            "samples_used": samples,
        }
        return Outcome(text=outcome.text, answer=outcome.answer, metrics=metrics)
