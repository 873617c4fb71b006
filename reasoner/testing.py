"""Public test helpers: the scripted backend, so users unit-test their strategies as we test ours.

```python
from reasoner import Reasoner
from reasoner.testing import ScriptedBackend

sol = Reasoner(backend=ScriptedBackend("Final answer: 5"), profile="smollm2").solve("2 + 3?", budget=16)
```

`forced_lengths(reasoner)` gives a real-engine test the long generations it needs whatever the
model would write: every request of the returned Reasoner ignores the end-of-sequence token.
"""

from reasoner.api import Reasoner
from reasoner.engines.forced_lengths import ForcedLengths
from reasoner.engines.scripted import RequestRecord, ScriptedBackend, ScriptedToken, ScriptedTokenizer
from reasoner.profiles import ModelProfile


def forced_lengths(reasoner: Reasoner, profile: ModelProfile | None = None) -> Reasoner:
    """A Reasoner on `reasoner`'s engine whose requests run to `max_tokens` (or a stop string).

    It shares the engine and the event loop that owns it (an engine answers only on its own
    loop: a second Reasoner built around the same backend would hang or fail), so it starts
    `reasoner` if it has not started. `profile` replaces `reasoner`'s. Close `reasoner`, never
    the sibling.
    """
    if reasoner._loop is None:
        reasoner.start()
    sibling = Reasoner(
        backend=ForcedLengths(reasoner.backend),
        profile=profile or reasoner.profile,
        max_concurrency=reasoner.max_concurrency,
    )
    sibling.model_name = reasoner.model_name
    sibling._portal, sibling._loop, sibling._limiter = reasoner._portal, reasoner._loop, reasoner._limiter
    return sibling


__all__ = ["ForcedLengths", "RequestRecord", "ScriptedBackend", "ScriptedToken", "ScriptedTokenizer", "forced_lengths"]
