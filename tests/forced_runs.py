"""Real-engine runs whose shape the test fixes, not the model.

`forced(reasoner)` is the shared engine wrapped in `ForcedLengths` (every request ignores the
end-of-sequence token and runs to its max_tokens), under the same profile with no system
prompt (nothing asks for a final answer) and a step delimiter no model writes, so every
step of a step-wise strategy is exactly `step_tokens` long. `TraceOrder` scores a step or a
sample by where its request came in the solve, never by what the model wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from reasoner import Reasoner, Session
from reasoner.testing import forced_lengths

UNWRITTEN_DELIMITER = "<<end of step 7f3a>>"
STORY = "Tell me a long story about a red fox who lives in a forest."


def forced(reasoner: Reasoner) -> Reasoner:
    """The shared engine, every request run to its full length; steps end only at `step_tokens`."""
    profile = dataclasses.replace(reasoner.profile, direct_system=None, step_delimiter=UNWRITTEN_DELIMITER)
    # Not `Reasoner(backend=ForcedLengths(...))`: the engine answers only on the loop of the Reasoner that owns it.
    return forced_lengths(reasoner, profile=profile)


class TraceOrder:
    """A scorer whose score is `rule(position, node attributes)`: position counts the requests of the
    same kind and depth (or sample round) started before this one in the solve, from 0.

    Records every score it gave by trace node, so the test knows the signal the strategy saw.
    """

    def __init__(self, rule: Callable[[int, dict], float], name: str = "trace_order"):
        self.rule = rule
        self.name = name
        self.given: dict[int, float] = {}

    async def score(self, session: Session, question: str, response: str, *, parent: int | None = None) -> float:
        assert parent is not None, "a trace-order score needs the scored request's trace node"
        graph = session.trace.graph
        attrs = graph.nodes[parent]
        peers = sorted(
            node
            for node, other in graph.nodes(data=True)
            if other["kind"] == attrs["kind"] and other.get("depth") == attrs.get("depth")
        )
        self.given[parent] = self.rule(peers.index(parent), attrs)
        return self.given[parent]
