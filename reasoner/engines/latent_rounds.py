"""Gathering latent steps into rounds, so many chains take one forward pass per round, not two.

Each latent step is a new request (`strategies.latent_switch`), and the engine starts a forward
pass as soon as a request waits and nothing runs; with many chains the steps settle into two
passes per round (while one group's pass runs, the other group's next steps arrive and go alone
in the pass after), each pass paying the model's fixed cost. So when nothing else runs and latent
steps of the last pass have not come back yet, a waiting latent step is held until they all have,
or half as long as that pass took has passed since it ended: waiting is worth it while it costs
less than the extra pass the latecomers would otherwise need. `round_wait_s` caps the wait (0
turns holding off). A latent step is a prompt-embedding request for one token; a new request comes
back for a finished one if the frontend stamped its arrival after that finish (requests sent
during the pass answer an earlier one). While a step is held the engine loop runs empty steps;
each sleeps `HOLD_POLL_S`, so the loop leaves the cores to the frontend.

`RoundGate` is the scheduler-side bookkeeping; the tail KV connector (`engines.tail_kv`) feeds it
vLLM's scheduler events and answers "not yet" for a held step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

ROUND_WAIT_S = 0.05
HOLD_FRACTION = 0.5  # of the last pass's duration: the longest a round waits for its latecomers
# While a step is held and nothing runs, the engine loop would spin on empty steps; each one
# sleeps this long instead, leaving the cores to the frontend that sends the awaited steps.
HOLD_POLL_S = 0.0005


def is_latent_step(request: Any) -> bool:
    """A prompt-embedding request for one token: what a latent step sends."""
    return request.prompt_embeds is not None and request.max_tokens == 1


@dataclass
class RoundGate:
    """Which waiting latent steps to hold for the rest of their round (see the module docstring).

    It keeps the requests a pass runs (scheduled, not finished), the passes scheduled and when the
    last one started, the latent steps of the last pass that had some and have not come back (with
    that pass's number and wall-clock end, the clock of requests' arrival stamps), and until when
    a waiting latent step is held for them.
    """

    round_wait_s: float = ROUND_WAIT_S
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    _running: set[str] = field(default_factory=set)
    _passes: int = 0
    _pass_started: float = 0.0
    _awaited: int = 0
    _awaited_pass: int = -1
    _finished_at: float = 0.0
    _hold_until: float = 0.0
    _holding: bool = False

    def arrived(self, request: Any) -> None:
        """A new request reached the scheduler: it may be one the round awaits."""
        if self._awaited and request.arrival_time >= self._finished_at:
            self._awaited -= 1

    def holds(self, request: Any) -> bool:
        """Whether a waiting request waits for the rest of its round (nothing else runs meanwhile)."""
        if self._running or not self._awaited or not is_latent_step(request):
            return False
        if self.clock() >= self._hold_until:
            self._awaited = 0
            return False
        self._holding = True
        return True

    def scheduled(self, request_ids: Collection[str]) -> None:
        """The scheduler's step is made: these requests run (none: an empty step, slowed while holding)."""
        if request_ids:
            self._running.update(request_ids)
            self._passes += 1
            self._pass_started = self.clock()
        elif self._holding:
            time.sleep(HOLD_POLL_S)
        self._holding = False

    def finished(self, request: Any) -> None:
        """A request ended; a latent step that ran is awaited back for the next round."""
        ran = request.request_id in self._running
        self._running.discard(request.request_id)
        if not ran or not is_latent_step(request):  # one aborted before it ran is in no pass
            return
        if self._awaited_pass != self._passes:
            self._awaited, self._awaited_pass = 0, self._passes
            self._finished_at = self.wall_clock()
            now = self.clock()
            self._hold_until = now + min(self.round_wait_s, HOLD_FRACTION * (now - self._pass_started))
        self._awaited += 1
