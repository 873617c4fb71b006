"""What every subcommand of the `reasoner` command line shares: exit codes and argument helpers.

`reasoner serve`'s options (server/main.py) use them too, so they live apart from the parser.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

EXIT_USER_ERROR = 2
EXIT_ENGINE_ERROR = 3
EXIT_INTERRUPTED = 130


def add_endpoint_argument(parser: argparse.ArgumentParser) -> None:
    """`--endpoint URL` (repeatable): run on vLLM OpenAI-compatible servers instead of a local engine."""
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="URL",
        help="a vLLM server (http://host:8000/v1) to run on instead of a local engine; repeat it for replicas "
        "(default: $REASONER_ENDPOINT, comma-separated; the API key comes from $REASONER_API_KEY)",
    )


def endpoints_from(args: argparse.Namespace) -> list[str] | None:
    """The servers to run on: `--endpoint` values, else `REASONER_ENDPOINT`, else None (local engine)."""
    given = list(args.endpoint) or [url for url in os.environ.get("REASONER_ENDPOINT", "").split(",") if url.strip()]
    for url in given:
        check_endpoint(url)
    return given or None


def check_endpoint(url: str) -> None:
    """Refuse a server URL that does not parse (`http://[::1/v1`) with an `InputError` naming it."""
    from reasoner.engines.replica import normalize_endpoint

    normalize_endpoint(url)


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """`-v/--verbose`: the engine's own logs on the terminal instead of in a log file."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the vLLM engine's own logs (default: written to a log file under $REASONER_HOME/logs)",
    )


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings to a dict; values are read as JSON when they parse, else kept as text."""
    from reasoner.errors import InputError

    options: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise InputError(f"option {pair!r} is not KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options
