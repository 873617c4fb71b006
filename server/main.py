"""`reasoner serve`: the command-line options, the Reasoner they describe, and uvicorn.

Kept light at import time (the CLI builds its parser from `add_serve_arguments`); FastAPI,
uvicorn and the engine are imported only when the server runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

API_KEY_ENV = "REASONER_API_KEY"


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `reasoner serve`."""
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]MODEL",
        help="HF model id or local folder (default: the embedded SmolLM2-135M); repeat as NAME=MODEL to serve "
        "several models, MODEL then also a server URL (URL,URL for replicas), the first the default",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--api-key", default=None, help=f"require 'Authorization: Bearer KEY' on /v1 (default: ${API_KEY_ENV}, or none)"
    )
    parser.add_argument("--served-model-name", default=None, help="model name clients use (default: the model's name)")
    parser.add_argument("--strategy", default="direct", help="strategy for the plain model name (default: direct)")
    parser.add_argument(
        "--strategy-option",
        action="append",
        default=[],
        metavar="STRATEGY.OPTION=VALUE",
        help="an option every request of STRATEGY runs with, e.g. route.policy_file=route.json (repeatable); "
        "the way to give options clients may not set (files); a request setting it otherwise is refused",
    )
    parser.add_argument("--budget", type=int, default=512, help="budget when a request sets none (default 512)")
    parser.add_argument("--max-budget", type=int, default=32768, help="most tokens a request's budget may be")
    parser.add_argument("--max-concurrency", type=int, default=64, help="solves running at once (default 64)")
    parser.add_argument("--max-queue", type=int, default=64, help="solves waiting for a slot before 429 (default 64)")
    parser.add_argument(
        "--shutdown-timeout", type=float, default=30.0, help="seconds solves in flight get on SIGTERM (default 30)"
    )
    parser.add_argument(
        "-e",
        "--engine-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a vLLM engine argument, e.g. -e max_model_len=2048 (repeatable)",
    )


def build_reasoner(args: argparse.Namespace) -> Any:
    """The `Reasoner` the server runs on, from the command-line options (the one place that builds it)."""
    from cli.arguments import endpoints_from, model_set_from, parse_options
    from reasoner import Reasoner

    engine_args = parse_options(args.engine_arg)
    models = model_set_from(args.model, engine_args)
    if models is not None:
        return Reasoner(models=models, max_concurrency=args.max_concurrency)
    return Reasoner(
        args.model[0] if args.model else None,
        endpoint=endpoints_from(args),
        engine_args=engine_args,
        max_concurrency=args.max_concurrency,
    )


def check_serve_arguments(args: argparse.Namespace) -> None:
    """Refuse bad options with an `InputError` naming the option, before anything starts."""
    from reasoner import get_strategy
    from reasoner.budget import as_budget
    from reasoner.errors import InputError

    for name in ("max_concurrency", "port"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.max_queue < 0 or args.shutdown_timeout < 0:
        raise InputError("--max-queue and --shutdown-timeout must not be negative")
    get_strategy(args.strategy)
    as_budget(args.budget)
    as_budget(args.max_budget)
    check_served_model_set(args)
    check_default_strategy(args)


def check_default_strategy(args: argparse.Namespace) -> None:
    """Refuse bad `--strategy-option`s, and a `--strategy` that cannot run with the operator's options alone
    (`route` without a policy), rather than answer every request for the plain model name with a 400."""
    from reasoner import get_strategy
    from reasoner.errors import InputError, ReasonerError
    from server.operator_options import parse_strategy_options

    options = parse_strategy_options(args.strategy_option)
    try:
        get_strategy(args.strategy).from_options(dict(options.get(args.strategy, {})))
    except ReasonerError as exc:
        raise InputError(
            f"--strategy {args.strategy} cannot run on the operator's options ({exc}); give them with "
            f"--strategy-option {args.strategy}.OPTION=VALUE"
        ) from None


def check_served_model_set(args: argparse.Namespace) -> None:
    """Refuse a `--model NAME=...` set that cannot be served: with `--endpoint` or `--served-model-name`
    (the names are the served names), or a name that is also a strategy name (the model-name grammar
    of `server.selection` could not tell them apart)."""
    from cli.arguments import model_set_from, parse_options
    from reasoner import strategy_names
    from reasoner.errors import InputError

    models = model_set_from(args.model, parse_options(args.engine_arg))
    if models is None:
        return
    if args.endpoint:
        raise InputError("--endpoint serves one model; with several, give each its URL: --model NAME=URL")
    if args.served_model_name is not None:
        raise InputError("--served-model-name names one model; with several, the NAMEs of --model NAME=... are served")
    clashes = sorted(set(models) & {*strategy_names(), "default"})
    if clashes:
        raise InputError(f"model name {clashes[0]!r} is also a strategy name; name the model otherwise")


def build_config(args: argparse.Namespace, model_name: str, models: tuple[str, ...] = ()) -> Any:
    """`ServerConfig` from the (checked) options; `models` names a served model set (empty: one model)."""
    from server.config import ServerConfig
    from server.operator_options import parse_strategy_options

    return ServerConfig(
        model_name=args.served_model_name or model_name,
        models=models,
        default_strategy=args.strategy,
        default_budget=args.budget,
        max_budget=args.max_budget,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        shutdown_timeout_s=args.shutdown_timeout,
        strategy_options=parse_strategy_options(args.strategy_option),
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket, so a busy port is a one-line error before the engine starts."""
    from reasoner.errors import InputError

    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM / Ctrl-C; solves in flight get `--shutdown-timeout` seconds, then are aborted."""
    from server.operator_options import check_served_models

    check_serve_arguments(args)
    sock = listening_socket(args.host, args.port)
    reasoner = build_reasoner(args)
    named = any("=" in value for value in args.model)
    config = build_config(args, reasoner.model_name, tuple(reasoner.models) if named else ())
    check_served_models(config.strategy_options, reasoner.models)
    asyncio.run(_serve(reasoner, config, sock))
    return 0


async def _serve(reasoner: Any, config: Any, sock: socket.socket) -> None:
    import uvicorn

    from server.app import create_app

    class Server(uvicorn.Server):
        """uvicorn, but SIGTERM / SIGINT end a graceful shutdown and a normal exit (uvicorn re-raises them)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._stop)
            try:
                yield
            finally:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)

        def _stop(self) -> None:
            self.force_exit = self.should_exit
            self.should_exit = True

    app = create_app(reasoner, config, close_reasoner=True)
    try:
        await reasoner.astart()
        host, port = sock.getsockname()[:2]
        sys.stderr.write(
            f"reasoner: serving {', '.join(config.models or [config.model_name])} on http://{host}:{port}/v1\n"
        )
        server = Server(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=int(config.shutdown_timeout_s) + 1,
            )
        )
        await server.serve(sockets=[sock])
    finally:
        await reasoner.aclose()
