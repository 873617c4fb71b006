"""reasoner: test-time reasoning orchestration on top of vLLM.

```python
from reasoner import solve, Budget
sol = solve("What is 12 + 30?", budget=128)
print(sol.answer, sol.usage.generated_tokens, sol.latency_s)
```

Layer: the core, at the bottom (DESIGN.md section 1). It imports none of the toolkit's other
packages: strategies register themselves (`register_strategy`) and are found by name.
"""

from reasoner.api import Reasoner, solve, solve_many
from reasoner.budget import Budget
from reasoner.cost import CostModel, ModelShape
from reasoner.errors import (
    BudgetError,
    CapabilityError,
    CostError,
    EngineError,
    InputError,
    ModelError,
    PromptError,
    ReasonerError,
    SandboxUnavailableError,
    StrategyError,
    SuiteError,
    UsageError,
)
from reasoner.ledger import BudgetExhausted, CostExhausted
from reasoner.model_set import ModelSpec
from reasoner.profiles import ModelProfile
from reasoner.session import Generation, RunningRequest, Session
from reasoner.solution import ModelUsage, Solution, Usage
from reasoner.strategy import Outcome, Strategy, StrategyOptions, get_strategy, register_strategy, strategy_names

__all__ = [
    "Budget",
    "BudgetError",
    "BudgetExhausted",
    "CapabilityError",
    "CostError",
    "CostExhausted",
    "CostModel",
    "EngineError",
    "Generation",
    "InputError",
    "ModelError",
    "ModelProfile",
    "ModelShape",
    "ModelSpec",
    "ModelUsage",
    "Outcome",
    "PromptError",
    "Reasoner",
    "ReasonerError",
    "RunningRequest",
    "SandboxUnavailableError",
    "Session",
    "Solution",
    "Strategy",
    "StrategyError",
    "StrategyOptions",
    "SuiteError",
    "Usage",
    "UsageError",
    "get_strategy",
    "register_strategy",
    "solve",
    "solve_many",
    "strategy_names",
]
