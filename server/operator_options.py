"""Strategy options the server's operator sets (`reasoner serve --strategy-option STRATEGY.OPTION=VALUE`).

Options that name something on the server's side (`route`'s and `auto`'s `policy_file`, a
probe file) are never taken from an HTTP client (`server.selection`); the operator gives them
here instead. They are checked once at start-up, before any engine starts: the strategy must
exist, the options must validate with it (a policy file must exist and be a policy), and a
policy must route only to models this server serves. Every request of that strategy then runs
with them; a request that sets one of them to another value is refused, never overridden.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from reasoner import get_strategy
from reasoner.errors import InputError, ReasonerError
from server.errors import APIError

OperatorOptions = Mapping[str, Mapping[str, Any]]
"""Strategy name -> option name -> value."""


def parse_strategy_options(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`STRATEGY.OPTION=VALUE` strings, by strategy; each strategy's options validated together.

    A value is read as JSON when it parses (`n=8`, `prune=true`), else kept as text (a path).
    Anything unusable is an `InputError` naming the flag's value and the fix.
    """
    from cli.arguments import parse_options

    by_strategy: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key = pair.partition("=")[0]
        strategy, dot, option = key.partition(".")
        if "=" not in pair or not dot or not strategy or not option:
            raise InputError(f"--strategy-option {pair!r} is not STRATEGY.OPTION=VALUE, e.g. route.policy_file=FILE")
        if not pair.partition("=")[2].strip():
            raise InputError(f"--strategy-option {pair!r} gives {key} no value; give one after the '='")
        options = by_strategy.setdefault(strategy, {})
        if option in options:
            raise InputError(f"--strategy-option sets {key} twice; give it once")
        options.update(parse_options([f"{option}={pair.partition('=')[2]}"]))
    for strategy, options in by_strategy.items():
        build(strategy, options)
    return by_strategy


def build(strategy: str, options: Mapping[str, Any]) -> Any:
    """The strategy built from the operator's options; what it refuses is an `InputError` naming the flag."""
    try:
        return get_strategy(strategy).from_options(dict(options))
    except ReasonerError as exc:
        raise InputError(f"--strategy-option for {strategy}: {exc}") from None


def check_served_models(options: OperatorOptions, models: Collection[str]) -> None:
    """Refuse operator options whose strategy routes to a model not in `models` (a routing policy's names)."""
    for strategy, chosen in options.items():
        check_models = getattr(build(strategy, chosen), "check_models", None)
        if check_models is None:
            continue
        try:
            check_models(models)
        except ReasonerError as exc:
            raise InputError(f"--strategy-option for {strategy}: {exc}") from None


def merge_operator_options(strategy: str, requested: dict[str, Any], operator: OperatorOptions) -> dict[str, Any]:
    """The request's options with the operator's for `strategy`; a request setting one to another value is a 400."""
    fixed = operator.get(strategy, {})
    for name, value in requested.items():
        if name in fixed and value != fixed[name]:
            raise APIError(
                400,
                f"strategy option {name}={value!r} conflicts with this server's {strategy} setting {name}="
                f"{fixed[name]!r}, which its operator fixed; leave {name} out of the request",
                param="strategy_options",
                code="operator_option_conflict",
            )
    return {**requested, **fixed}
