"""The ledger: the only way a strategy gets tokens.

Every request reserves its `max_tokens` from what remains before it starts, so requests
running concurrently can never overspend the budget together. Tokens move from reserved
to generated as they stream in; what a finished or aborted request did not use goes back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from reasoner.budget import Budget
from reasoner.errors import BudgetError, EngineError


class BudgetExhausted(BudgetError):
    """Nothing of the budget is left for a new request (tokens, samples or deadline)."""


@dataclass
class Reservation:
    """Tokens set aside for one running request."""

    request_id: str
    phase: str
    granted: int
    generated: int = 0
    closed: bool = False


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

    @property
    def remaining(self) -> int:
        """Tokens a new request may still be granted."""
        return self.budget.tokens - self.generated_tokens - self.reserved_tokens

    def deadline_passed(self) -> bool:
        if self.budget.deadline_s is None:
            return False
        return time.monotonic() - self.started_at >= self.budget.deadline_s

    def reserve(self, request_id: str, wanted: int, phase: str, *, final: bool = False) -> Reservation:
        """Grant up to `wanted` tokens; raise `BudgetExhausted` when none can be granted.

        A `final` request (a strategy's last, answering one) may start after the deadline.
        """
        if wanted < 1:
            raise BudgetError(f"a request must ask for at least 1 token, asked for {wanted}")
        if self.deadline_passed() and not final:
            raise BudgetExhausted(f"deadline of {self.budget.deadline_s}s passed; no new request starts")
        granted = min(wanted, self.remaining)
        if granted < 1:
            raise BudgetExhausted(f"all {self.budget.tokens} budget tokens are spent or reserved")
        self.reserved_tokens += granted
        self.requests += 1
        return Reservation(request_id=request_id, phase=phase, granted=granted)

    def record_prompt(self, prompt_tokens: int, cached_prompt_tokens: int) -> None:
        self.prompt_tokens += prompt_tokens
        self.cached_prompt_tokens += cached_prompt_tokens

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

    def close(self, reservation: Reservation, aborted: bool) -> None:
        """Return a finished request's unused tokens; count them as saved when it was aborted."""
        if reservation.closed:
            return
        reservation.closed = True
        unused = reservation.granted - reservation.generated
        self.reserved_tokens -= unused
        if aborted:
            self.aborted_tokens_saved += unused

    def charge(self, tokens: int, phase: str, requests: int = 0) -> None:
        """Count `tokens` generated outside this ledger's requests (e.g. a batch estimate) as spent.

        Raises `BudgetExhausted` when they exceed what remains; nothing is counted then.
        """
        if tokens < 0 or requests < 0:
            raise BudgetError(f"a charge must be non-negative, got {tokens} tokens and {requests} requests")
        if tokens > self.remaining:
            raise BudgetExhausted(f"a charge of {tokens} tokens exceeds the {self.remaining} left of the budget")
        self.generated_tokens += tokens
        self.generated_by_phase[phase] += tokens
        self.requests += requests

    @contextmanager
    def hold(self, tokens: int) -> Iterator[None]:
        """Keep `tokens` out of reach of new requests while the block runs (a sub-budget)."""
        held = max(0, min(tokens, self.remaining))
        self.reserved_tokens += held
        try:
            yield
        finally:
            self.reserved_tokens -= held
