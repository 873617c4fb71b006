"""A price table: dollars per million tokens for each model, as a hosted API would charge.

eFLOPs (`reasoner.cost`) measure what a solve costs the hardware; a price table says what it
would cost a buyer. Each model has an `input` and an `output` price in $ per million tokens,
and optionally a `cached_input` price for prompt tokens served from the prefix cache (the
`input` price when not given). A negative, missing or non-finite price and an unknown model
are `CostError`s.

```python
table = PriceTable.from_file("prices.json")   # {"small": {"input": 0.1, "output": 0.4}, ...}
dollars = table.price("small", solution.usage)
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from reasoner.errors import CostError

PER_TOKENS = 1_000_000


class TokenCounts(Protocol):
    """What a price needs of a usage: `reasoner.Usage` has it."""

    prompt_tokens: int
    cached_prompt_tokens: int
    generated_tokens: int


class TokenPrice(BaseModel):
    """One model's prices in $ per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0, allow_inf_nan=False, description="$ per million prompt tokens.")
    output: float = Field(ge=0, allow_inf_nan=False, description="$ per million generated tokens.")
    cached_input: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="$ per million cached prompt tokens (default: input)."
    )


class PriceTable(RootModel[dict[str, TokenPrice]]):
    """Prices by model name."""

    def __init__(self, root: Any) -> None:
        try:
            super().__init__(root)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "prices"
            raise CostError(f"invalid price table at {where}: {error['msg']} (got {error.get('input')!r})") from None

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """A table from a JSON file mapping model names to their prices."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CostError(f"cannot read the price table {path}: {exc}") from None
        return cls(data)

    def price(self, model: str, usage: TokenCounts) -> float:
        """The dollars `usage` costs on `model`."""
        prices = self.root.get(model)
        if prices is None:
            raise CostError(
                f"no price for model {model!r} in the price table; priced: {', '.join(self.root) or 'none'}"
            )
        cached = min(usage.cached_prompt_tokens, usage.prompt_tokens)
        cached_price = prices.input if prices.cached_input is None else prices.cached_input
        dollars = (
            (usage.prompt_tokens - cached) * prices.input
            + cached * cached_price
            + usage.generated_tokens * prices.output
        )
        return dollars / PER_TOKENS
