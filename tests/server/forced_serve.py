"""`python -m tests.server.forced_serve serve ...`: the real `reasoner serve` command, on an engine
whose every request runs to its length (`ForcedLengths`), so a server test that needs a solve in
flight for a while forces it instead of hoping the model writes long. All else is the CLI's.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import server.main
from cli.main import main
from reasoner.testing import ForcedLengths


class OwnedForcedLengths(ForcedLengths):
    """`ForcedLengths` that owns its engine: the server's shutdown closes it."""

    async def close(self) -> None:
        await self.inner.close()


def build_forced_reasoner(args: argparse.Namespace, build: Any = server.main.build_reasoner) -> Any:
    reasoner = build(args)
    reasoner.backend = OwnedForcedLengths(reasoner.backend)
    return reasoner


if __name__ == "__main__":
    server.main.build_reasoner = build_forced_reasoner
    sys.exit(main(sys.argv[1:]))
