"""Public test helpers: the scripted backend, so users unit-test their strategies as we test ours.

```python
from reasoner import Reasoner
from reasoner.testing import ScriptedBackend

sol = Reasoner(backend=ScriptedBackend("Final answer: 5"), profile="smollm2").solve("2 + 3?", budget=16)
```

`forced_lengths(reasoner)` gives a real-engine test the long generations it needs whatever the
model would write: every request of the returned Reasoner ignores the end-of-sequence token.
`sharing_engine(reasoner, wrapper)` runs any other wrapper of a started engine's backend.
"""

from reasoner.api import Reasoner
from reasoner.engines.base import Backend
from reasoner.engines.forced_lengths import ForcedLengths
from reasoner.engines.scripted import RequestRecord, ScriptedBackend, ScriptedToken, ScriptedTokenizer
from reasoner.profiles import ModelProfile


def sharing_engine(reasoner: Reasoner, backend: Backend, profile: ModelProfile | None = None) -> Reasoner:
    """A Reasoner on `backend`, a wrapper of `reasoner`'s engine, run on the loop that owns that engine.

    An engine answers only on the event loop that started it: a second Reasoner built around the
    same engine runs on a loop of its own and hangs or fails. This one shares `reasoner`'s loop
    (starting `reasoner` if it has not started). `profile` replaces `reasoner`'s. Close
    `reasoner`, never the sibling.
    """
    if reasoner._loop is None:
        reasoner.start()
    sibling = Reasoner(backend=backend, profile=profile or reasoner.profile, max_concurrency=reasoner.max_concurrency)
    sibling.model_name = reasoner.model_name
    sibling.cost_model = reasoner.cost_model
    sibling._portal, sibling._loop, sibling._limiter = reasoner._portal, reasoner._loop, reasoner._limiter
    return sibling


def forced_lengths(reasoner: Reasoner, profile: ModelProfile | None = None) -> Reasoner:
    """A Reasoner on `reasoner`'s engine whose requests run to `max_tokens` (or a stop string)."""
    return sharing_engine(reasoner, ForcedLengths(reasoner.backend), profile)


__all__ = [
    "ForcedLengths",
    "RequestRecord",
    "ScriptedBackend",
    "ScriptedToken",
    "ScriptedTokenizer",
    "forced_lengths",
    "sharing_engine",
]
