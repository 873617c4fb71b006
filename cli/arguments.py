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


def model_set_from(values: Sequence[str], engine_args: dict[str, Any]) -> dict[str, Any] | None:
    """The named models of repeated `--model NAME=MODEL` options, or None for one plain `--model MODEL`.

    `MODEL` is a Hugging Face id or local folder (an in-process engine, with `engine_args`), or
    one or more comma-separated server URLs (a fleet of replicas). The first is the default model.
    """
    from reasoner.errors import InputError
    from reasoner.model_set import ModelSpec, check_model_name

    named = [value for value in values if "=" in value]
    if not named:
        if len(values) > 1:
            raise InputError("several --model options need a name each: --model small=MODEL --model large=MODEL")
        return None
    if len(named) < len(values):
        raise InputError("--model MODEL and --model NAME=MODEL cannot be mixed; name every model")
    models: dict[str, Any] = {}
    for value in named:
        name, _, source = value.partition("=")
        check_model_name(name)
        if name in models:
            raise InputError(f"model name {name!r} is given twice in --model; give each model its own name")
        urls = [url.strip() for url in source.split(",")]
        if not source.strip() or not all(urls):
            raise InputError(f"--model {value!r} names no model; use NAME=HF_ID, NAME=FOLDER or NAME=URL[,URL...]")
        if urls[0].startswith(("http://", "https://")):
            for url in urls:
                check_endpoint(url)
            models[name] = ModelSpec(endpoint=urls)
        else:
            models[name] = ModelSpec(model=source, engine_args=engine_args)
    if engine_args and all(spec.endpoint is not None for spec in models.values()):
        raise InputError("--engine-arg configures in-process engines, and every --model here is a server URL")
    return models


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
