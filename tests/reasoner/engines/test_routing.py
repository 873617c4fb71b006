"""Routing policies pick replicas by the rule written at the top of reasoner/engines/routing.py."""

from __future__ import annotations

import httpx

from reasoner.engines.replica import Replica
from reasoner.engines.routing import LeastOutstanding, PrefixAffinity, RoundRobin


def fleet(count: int) -> list[Replica]:
    client = httpx.AsyncClient()
    return [Replica(f"http://r{index}.test", client) for index in range(count)]


def test_a_new_solve_goes_to_the_replica_with_least_outstanding_work() -> None:
    replicas = fleet(3)
    replicas[0].begin(500)
    replicas[1].begin(100)
    replicas[2].begin(300)
    assert PrefixAffinity().choose("s1", replicas) is replicas[1]


def test_every_request_of_a_solve_goes_to_the_replica_its_first_went_to() -> None:
    replicas = fleet(2)
    policy = PrefixAffinity()
    first = policy.choose("s1", replicas)
    first.begin(10_000)  # even when that replica gets busier than the other
    assert all(policy.choose("s1", replicas) is first for _ in range(5))
    assert policy.choose("s2", replicas) is not first


def test_a_solve_whose_replica_is_down_moves_to_the_least_loaded_up_replica() -> None:
    replicas = fleet(3)
    policy = PrefixAffinity()
    first = policy.choose("s1", replicas)
    up = [replica for replica in replicas if replica is not first]
    up[0].begin(50)
    moved = policy.choose("s1", up)
    assert moved is up[1]
    assert policy.choose("s1", replicas) is moved  # and stays there


def test_the_affinity_map_forgets_the_least_recent_solves() -> None:
    replicas = fleet(2)
    policy = PrefixAffinity(max_solves=2)
    for key in ("s1", "s2", "s3"):
        policy.choose(key, replicas)
    assert policy.replica_of("s1") is None
    assert policy.replica_of("s3") is not None


def test_ties_go_to_fewer_requests_in_flight_then_the_earlier_replica() -> None:
    replicas = fleet(2)
    assert LeastOutstanding().choose("any", replicas) is replicas[0]
    replicas[0].begin(0)
    assert LeastOutstanding().choose("any", replicas) is replicas[1]


def test_round_robin_ignores_the_solve() -> None:
    replicas = fleet(2)
    policy = RoundRobin()
    assert [policy.choose("s1", replicas) for _ in range(4)] == [replicas[0], replicas[1]] * 2
