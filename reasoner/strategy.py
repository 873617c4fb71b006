"""Strategy base class and the registry that finds strategies by name.

A strategy is a small class with a pydantic `Options` model and one async `run`. Built-in
strategies live in the `strategies` package and are found through the
`reasoner.strategies` entry-point group: an entry names a strategy class, or a module whose
import registers strategies with `register_strategy`. Third-party packages add their own
the same way.
"""

from __future__ import annotations

import abc
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from reasoner.errors import StrategyError
from reasoner.session import Session
from reasoner.solution import MetricValue

ENTRY_POINT_GROUP = "reasoner.strategies"


@dataclass(frozen=True)
class AppliesWhen:
    """Field metadata: the option takes effect only while option `option` has one of `values` (with
    `negate`: none of them).

    Mark a field `Annotated[int, AppliesWhen("rule", ("swireasoning",))]`; setting it explicitly while
    the governing option says otherwise is an error naming both, never a silently ignored value.
    """

    option: str
    values: Collection[Any]
    negate: bool = False

    def holds(self, value: Any) -> bool:
        return (value in self.values) != self.negate

    def refusal(self, name: str, value: Any) -> str:
        """Why option `name` cannot be set while the governing option is `value`."""
        if self.negate:
            return f"option {name!r} does not apply with {self.option}={value!r}; drop it"
        allowed = " or ".join(repr(allowed) for allowed in self.values)
        return f"option {name!r} applies only with {self.option}={allowed}, not {self.option}={value!r}; drop it"


class StrategyOptions(BaseModel):
    """Base of every strategy's options: frozen, unknown options are errors, and so is an option set
    where it does not apply (`AppliesWhen`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _applicable(self) -> Self:
        for name in sorted(self.model_fields_set):
            conditions = [item for item in type(self).model_fields[name].metadata if isinstance(item, AppliesWhen)]
            for condition in conditions:
                governing = getattr(self, condition.option)
                if not condition.holds(governing):
                    raise ValueError(condition.refusal(name, governing))
        return self


@dataclass
class Outcome:
    """What a strategy hands back: the final text, its answer and the strategy's metrics."""

    text: str
    answer: str | None
    metrics: dict[str, MetricValue] = field(default_factory=dict)


class Strategy(abc.ABC):
    """One way of spending a budget on a prompt."""

    name: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions

    def __init__(self, options: StrategyOptions):
        self.options = options

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Strategy:
        """Validate keyword options; unknown or invalid ones raise `StrategyError` naming the known ones."""
        try:
            return cls(cls.Options(**options))
        except ValidationError as exc:
            raise StrategyError(_options_message(cls, exc)) from None

    @abc.abstractmethod
    async def run(self, session: Session, prompt: str) -> Outcome:
        """Solve `prompt` within the session's budget."""


_REGISTRY: dict[str, type[Strategy]] = {}
_entry_points_loaded = False


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a strategy available by its `name`."""
    _REGISTRY[cls.name] = cls
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        if isinstance(loaded, type) and issubclass(loaded, Strategy):
            _REGISTRY.setdefault(loaded.name, loaded)


def strategy_names() -> list[str]:
    """Names of every known strategy."""
    _load_entry_points()
    return sorted(_REGISTRY)


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as `name`."""
    _load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise StrategyError(f"unknown strategy {name!r}; known: {', '.join(strategy_names())}") from None


def _options_message(cls: type[Strategy], exc: ValidationError) -> str:
    known = ", ".join(sorted(cls.Options.model_fields)) or "none"
    problems = []
    for error in exc.errors():
        option = ".".join(str(part) for part in error["loc"])
        if not option:
            problems.append(str(error.get("ctx", {}).get("error", error["msg"])))
        elif error["type"] == "extra_forbidden":
            problems.append(f"unknown option {option!r}")
        else:
            problems.append(f"option {option}={error.get('input')!r}: {error['msg']}")
    return f"strategy {cls.name!r}: {'; '.join(problems)} (known options: {known})"
