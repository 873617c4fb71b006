"""The ledger: the only way a strategy gets tokens.

Every request reserves its `max_tokens` from what remains before it starts, so requests
running concurrently can never overspend the budget together. Tokens move from reserved
to generated as they stream in; what a finished or aborted request did not use goes back.
A budget's `cost` cap works the same way in eFLOPs (`reasoner.cost`): a request reserves the
cost of its uncached prompt and every token it is granted, its grant cut to what the cost left
can pay; its cost so far is spent as its tokens and prefix-cache hits come in. Tokens generated
outside the ledger's requests (`charge`) spend their cost too, and a sub-budget (`hold`) can hold
cost as well as tokens.
Every request names its model (`reasoner.model_set`), and `by_model` counts each model apart;
the caps hold for all of them together.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from reasoner.budget import Budget
from reasoner.cost import CostModel
from reasoner.errors import BudgetError, EngineError


class BudgetExhausted(BudgetError):
    """Nothing of the budget is left for a new request (tokens, samples or deadline)."""


class CostExhausted(BudgetExhausted):
    """The budget's cost cap cannot pay one more generated token for a new request."""


@dataclass
class ModelCounts:
    """What one model of the solve spent: its share of the ledger's totals."""

    generated_tokens: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    requests: int = 0
    cost: int = 0


@dataclass
class Reservation:
    """Tokens set aside for one running request on model `model`."""

    request_id: str
    phase: str
    granted: int
    model: str = ""
    generated: int = 0
    closed: bool = False
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    cost_model: CostModel | None = None
    cost_granted: int = 0
    cost_spent: int = 0


@dataclass
class Ledger:
    """Counts everything one solve spends, and refuses what the budget cannot pay."""

    budget: Budget
    started_at: float = field(default_factory=time.monotonic)
    generated_tokens: int = 0
    reserved_tokens: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    requests: int = 0
    aborted_tokens_saved: int = 0
    generated_by_phase: Counter[str] = field(default_factory=Counter)
    priced: bool = False
    cost: int = 0
    reserved_cost: int = 0
    default_model: str = ""
    by_model: dict[str, ModelCounts] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        """Tokens a new request may still be granted."""
        return self.budget.tokens - self.generated_tokens - self.reserved_tokens

    @property
    def cost_left(self) -> int | None:
        """eFLOPs a new request may still reserve, or None without a cost cap."""
        if self.budget.cost is None:
            return None
        return math.floor(self.budget.cost) - self.cost - self.reserved_cost

    def deadline_passed(self) -> bool:
        if self.budget.deadline_s is None:
            return False
        return time.monotonic() - self.started_at >= self.budget.deadline_s

    def reserve(
        self,
        request_id: str,
        wanted: int,
        phase: str,
        *,
        final: bool = False,
        prompt_tokens: int = 0,
        cost_model: CostModel | None = None,
        model: str | None = None,
    ) -> Reservation:
        """Grant up to `wanted` tokens; raise `BudgetExhausted` when none can be granted.

        A `final` request (a strategy's last, answering one) may start after the deadline.
        `cost_model` prices the request (`prompt_tokens` long); under a cost cap it must be
        given, and the grant is cut to what the cost left pays (`CostExhausted` when not one token).
        `model` names the model it runs on (default: `default_model`).
        """
        if wanted < 1:
            raise BudgetError(f"a request must ask for at least 1 token, asked for {wanted}")
        if self.deadline_passed() and not final:
            raise BudgetExhausted(f"deadline of {self.budget.deadline_s}s passed; no new request starts")
        granted = min(wanted, self.remaining)
        if granted < 1:
            raise BudgetExhausted(f"all {self.budget.tokens} budget tokens are spent or reserved")
        cost_left = self.cost_left
        if cost_model is None:
            if cost_left is not None:
                raise BudgetError("a cost budget needs every request priced; this request has no cost model")
            self.priced = False
        elif cost_left is not None:
            granted = cost_model.max_generated(prompt_tokens, cost_left, granted)
            if granted < 1:
                raise CostExhausted(
                    f"the cost budget of {self.budget.cost:.4g} eFLOPs cannot pay one token more: "
                    f"{max(cost_left, 0):.4g} are left and a token after {prompt_tokens} prompt tokens costs "
                    f"{cost_model.eflops(prompt_tokens, 0, 1):.4g}"
                )
        model = self.default_model if model is None else model
        reservation = Reservation(request_id, phase, granted, model, prompt_tokens=prompt_tokens, cost_model=cost_model)
        if cost_model is not None:
            reservation.cost_granted = cost_model.eflops(prompt_tokens, 0, granted)
            self.reserved_cost += reservation.cost_granted
        self.reserved_tokens += granted
        self.requests += 1
        self.counts(model).requests += 1
        return reservation

    def record_prompt(
        self, prompt_tokens: int, cached_prompt_tokens: int, reservation: Reservation | None = None
    ) -> None:
        """Count a request's prompt tokens and prefix-cache hits (which lower its cost)."""
        self.prompt_tokens += prompt_tokens
        self.cached_prompt_tokens += cached_prompt_tokens
        counts = self.counts(self.default_model if reservation is None else reservation.model)
        counts.prompt_tokens += prompt_tokens
        counts.cached_prompt_tokens += cached_prompt_tokens
        if reservation is not None:
            reservation.cached_prompt_tokens += cached_prompt_tokens
            self._spend_cost(reservation)

    def record_tokens(self, reservation: Reservation, count: int) -> None:
        """Move `count` streamed tokens of a request from reserved to generated."""
        if reservation.generated + count > reservation.granted:
            raise EngineError(
                f"request {reservation.request_id} produced {reservation.generated + count} tokens, "
                f"more than its max_tokens {reservation.granted}"
            )
        reservation.generated += count
        self.reserved_tokens -= count
        self.generated_tokens += count
        self.generated_by_phase[reservation.phase] += count
        self.counts(reservation.model).generated_tokens += count
        self._spend_cost(reservation)

    def close(self, reservation: Reservation, aborted: bool) -> None:
        """Return a finished request's unused tokens; count them as saved when it was aborted."""
        if reservation.closed:
            return
        reservation.closed = True
        unused = reservation.granted - reservation.generated
        self.reserved_tokens -= unused
        self.reserved_cost -= reservation.cost_granted - reservation.cost_spent
        if aborted:
            self.aborted_tokens_saved += unused

    def _spend_cost(self, reservation: Reservation) -> None:
        """Bring the request's spent cost up to date; the rest of its reserved cost stays reserved."""
        if reservation.cost_model is None or reservation.closed:
            return
        spent = reservation.cost_model.eflops(
            reservation.prompt_tokens, reservation.cached_prompt_tokens, reservation.generated
        )
        self.cost += spent - reservation.cost_spent
        self.counts(reservation.model).cost += spent - reservation.cost_spent
        self.reserved_cost -= spent - reservation.cost_spent
        reservation.cost_spent = spent

    def charge(
        self, tokens: int, phase: str, requests: int = 0, model: str | None = None, cost: int | None = None
    ) -> None:
        """Count `tokens` generated outside this ledger's requests (e.g. a batch estimate) on `model`
        (default: `default_model`) as spent, and `cost`, their eFLOPs (`reasoner.cost`), with them.

        Under a cost cap a charge of tokens must say its `cost`; without one, it leaves the solve's cost
        unknown (`Usage.cost` None), as an unpriced request does. Raises `BudgetExhausted` when the
        tokens exceed what remains, `CostExhausted` when the cost exceeds the cost left; nothing is
        counted then.
        """
        if tokens < 0 or requests < 0 or (cost is not None and cost < 0):
            raise BudgetError(
                f"a charge must be non-negative, got {tokens} tokens, {requests} requests and cost {cost}"
            )
        if tokens > self.remaining:
            raise BudgetExhausted(f"a charge of {tokens} tokens exceeds the {self.remaining} left of the budget")
        cost_left = self.cost_left
        if cost is None and tokens and cost_left is not None:
            raise BudgetError(f"a cost budget needs every charge priced; this charge of {tokens} tokens has no cost")
        if cost is not None and cost_left is not None and cost > cost_left:
            raise CostExhausted(
                f"a charge of {cost:.4g} eFLOPs exceeds the {max(cost_left, 0):.4g} left of the cost budget"
            )
        counts = self.counts(self.default_model if model is None else model)
        if cost is None:
            self.priced = self.priced and not tokens
        else:
            self.cost += cost
            counts.cost += cost
        self.generated_tokens += tokens
        self.generated_by_phase[phase] += tokens
        self.requests += requests
        counts.generated_tokens += tokens
        counts.requests += requests

    def counts(self, model: str) -> ModelCounts:
        """Model `model`'s counts (made at its first use)."""
        if model not in self.by_model:
            self.by_model[model] = ModelCounts()
        return self.by_model[model]

    @contextmanager
    def hold(self, tokens: int, cost: int = 0) -> Iterator[None]:
        """Keep `tokens`, and `cost` eFLOPs under a cost cap, out of reach of new requests while the block
        runs (a sub-budget); each is held up to what is left of it."""
        held = max(0, min(tokens, self.remaining))
        cost_left = self.cost_left
        held_cost = 0 if cost_left is None else max(0, min(cost, cost_left))
        self.reserved_tokens += held
        self.reserved_cost += held_cost
        try:
            yield
        finally:
            self.reserved_tokens -= held
            self.reserved_cost -= held_cost
