"""`Budget`: how much compute one solve (or one batch) may spend."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, model_validator

from reasoner.errors import BudgetError


class Budget(BaseModel):
    """Caps on one solve. Every request of the solve together stays within them.

    `tokens` is a hard cap on generated tokens over all requests. `thinking` and
    `answer` optionally split it between the reasoning phase and the final answer. `cost`
    caps the solve's eFLOPs (compute plus memory traffic, `reasoner.cost`) next to its tokens.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: StrictInt = Field(gt=0, description="Hard cap on generated tokens, all requests together.")
    thinking: StrictInt | None = Field(
        default=None, ge=0, description="Tokens the thinking phase may use (within `tokens`)."
    )
    answer: StrictInt | None = Field(
        default=None, ge=0, description="Tokens reserved for the final answer (within `tokens`)."
    )
    samples: StrictInt | None = Field(
        default=None, gt=0, description="Most samples (independent generations) a strategy may start."
    )
    deadline_s: float | None = Field(
        default=None, gt=0, description="Wall-clock seconds after which no new request starts."
    )
    cost: StrictFloat | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Hard cap on the solve's cost in eFLOPs (`reasoner.cost`), all requests together.",
    )

    def __init__(self, **data: object) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise BudgetError(_first_error(exc)) from None

    @model_validator(mode="after")
    def _split_fits(self) -> Budget:
        split = (self.thinking or 0) + (self.answer or 0)
        if split > self.tokens:
            raise ValueError(
                f"thinking ({self.thinking}) + answer ({self.answer}) = {split} exceeds "
                f"tokens ({self.tokens}); raise tokens or lower the split"
            )
        return self


BudgetLike = int | Budget


def as_budget(budget: BudgetLike | dict[str, object]) -> Budget:
    """Turn an int (total tokens), a dict or a `Budget` into a validated `Budget`."""
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, bool):
        raise BudgetError(f"budget must be a positive integer or a Budget, got {budget!r}")
    if isinstance(budget, int):
        return Budget(tokens=budget)
    if isinstance(budget, dict):
        return Budget(**budget)
    raise BudgetError(f"budget must be a positive integer or a Budget, got {budget!r}")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "budget"
    if error["type"] == "extra_forbidden":
        return f"unknown budget field {field!r}; known: {', '.join(Budget.model_fields)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"invalid budget {field}={error.get('input')!r}: {message}"
