"""The session's shared engine lent to code that would start (and close) an engine of its own."""

from __future__ import annotations

from reasoner import Reasoner


class Lent:
    """Stands where a command builds `Reasoner(...)`: entering gives the shared one, leaving closes nothing."""

    def __init__(self, reasoner: Reasoner):
        self.reasoner = reasoner
        self.calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def __call__(self, *args: object, **kwargs: object) -> Lent:
        self.calls.append((args, kwargs))
        return self

    def __enter__(self) -> Reasoner:
        return self.reasoner

    def __exit__(self, *exc_info: object) -> None:
        return None

    async def __aenter__(self) -> Reasoner:
        return self.reasoner

    async def __aexit__(self, *exc_info: object) -> None:
        return None
