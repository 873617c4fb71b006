"""Public test helpers: the scripted backend, so users unit-test their strategies as we test ours.

```python
from reasoner import Reasoner
from reasoner.testing import ScriptedBackend

sol = Reasoner(backend=ScriptedBackend("Final answer: 5"), profile="smollm2").solve("2 + 3?", budget=16)
```
"""

from reasoner.engines.scripted import RequestRecord, ScriptedBackend, ScriptedToken, ScriptedTokenizer

__all__ = ["RequestRecord", "ScriptedBackend", "ScriptedToken", "ScriptedTokenizer"]
