"""Strategy base class and the registry that finds strategies by name.

A strategy is a small class with a pydantic `Options` model and one async `run`. Built-in
strategies live in the `strategies` package and are found through the
`reasoner.strategies` entry-point group: an entry names a strategy class, or a module whose
import registers strategies with `register_strategy`. Third-party packages add their own
the same way.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from reasoner.errors import StrategyError
from reasoner.session import Session
from reasoner.solution import MetricValue

ENTRY_POINT_GROUP = "reasoner.strategies"


class StrategyOptions(BaseModel):
    """Base of every strategy's options: frozen, and unknown options are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown option {option!r}")
        else:
            problems.append(f"option {option}={error.get('input')!r}: {error['msg']}")
    return f"strategy {cls.name!r}: {'; '.join(problems)} (known options: {known})"
