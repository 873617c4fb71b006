"""Routing policies: which replica of a fleet gets a request.

The default policy, `PrefixAffinity`, in words:

  Every request carries the key of the solve it belongs to. The first request of a solve
  goes to the replica with the least outstanding work (prompt plus max_tokens of the
  requests this client has in flight there; ties go to fewer requests in flight, then to
  the earlier replica). Every later request of that solve goes to the same replica, so the
  prefixes its samples, branches, children and forced answers share are computed once and
  hit one prefix cache. A solve whose replica is down moves, with all its later requests,
  to the replica that a new solve would get. The solve -> replica map remembers the last
  `max_solves` solves (least recently used are forgotten).

`LeastOutstanding` routes every request on its own by least outstanding work, and
`RoundRobin` cycles through the replicas per request; both ignore affinity (baselines).
A policy sees only the replicas that are up; the backend handles down-marking and probes.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from reasoner.engines.replica import Replica

DEFAULT_MAX_SOLVES = 10_000


class RoutingPolicy(Protocol):
    """Picks a replica for one request of solve `key` among the replicas that are up."""

    name: str

    def choose(self, key: str, replicas: Sequence[Replica]) -> Replica: ...


def least_loaded(replicas: Sequence[Replica]) -> Replica:
    """The replica with the least outstanding tokens, then the fewest requests in flight, then the first."""
    return min(replicas, key=lambda replica: (replica.outstanding_tokens, replica.in_flight))


class LeastOutstanding:
    """Every request to the replica with the least outstanding work."""

    name = "least_outstanding"

    def choose(self, key: str, replicas: Sequence[Replica]) -> Replica:
        return least_loaded(replicas)


class RoundRobin:
    """Requests to the replicas in turn, whatever solve they belong to."""

    name = "round_robin"

    def __init__(self) -> None:
        self._turn = itertools.count()

    def choose(self, key: str, replicas: Sequence[Replica]) -> Replica:
        return replicas[next(self._turn) % len(replicas)]


class PrefixAffinity:
    """One solve, one replica; new solves to the least loaded (see the module docstring)."""

    name = "prefix_affinity"

    def __init__(self, max_solves: int = DEFAULT_MAX_SOLVES):
        self.max_solves = max_solves
        self._bound: OrderedDict[str, Replica] = OrderedDict()

    def choose(self, key: str, replicas: Sequence[Replica]) -> Replica:
        bound = self._bound.get(key)
        if bound is not None and bound in replicas:
            self._bound.move_to_end(key)
            return bound
        chosen = least_loaded(replicas)
        self._bound[key] = chosen
        self._bound.move_to_end(key)
        while len(self._bound) > self.max_solves:
            self._bound.popitem(last=False)
        return chosen

    def replica_of(self, key: str) -> Replica | None:
        """The replica solve `key` is bound to, if any."""
        return self._bound.get(key)


POLICIES = {"prefix_affinity": PrefixAffinity, "least_outstanding": LeastOutstanding, "round_robin": RoundRobin}
