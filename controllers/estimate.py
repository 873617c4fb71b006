"""What every difficulty estimator is: the `Estimator` base and the `Estimate` it returns.

An estimator measures a prompt on the solve's own session; `Estimator.estimate` wraps the
measurement in one `estimate` trace root, clamps the difficulty to [0, 1] and reports what the
measurement generated. The estimators themselves live in `controllers.estimators` and
`controllers.hidden_state`; both build on this module, which imports neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reasoner import Session


@dataclass
class Estimate:
    """What an estimator found: difficulty in [0, 1], its features and its generated tokens."""

    estimator: str
    difficulty: float
    tokens: int
    features: dict[str, float] = field(default_factory=dict)
    node: int | None = None
    representation: str | None = None


class Estimator:
    """Base: `cost_cap` bounds the tokens one estimate may generate, `requests` the requests it makes."""

    name = "estimator"
    cost_cap = 0
    requests = 1

    async def estimate(self, session: Session, prompt: str) -> Estimate:
        """Estimate the prompt's difficulty on `session`, charging its tokens there."""
        before = session.ledger.generated_tokens
        root = session.trace.add("estimate", phase="estimation", estimator=self.name)
        difficulty, features = await self._measure(session, prompt, root)
        tokens = session.ledger.generated_tokens - before
        difficulty = min(1.0, max(0.0, difficulty))
        session.trace.update(root, tokens=0, difficulty=difficulty, estimator_tokens=tokens)
        return Estimate(self.name, difficulty, tokens, features, root)

    async def _measure(self, session: Session, prompt: str, root: int) -> tuple[float, dict[str, float]]:
        raise NotImplementedError
