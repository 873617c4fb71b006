"""The `reasoner` command line. User errors exit 2 with one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from rich.console import Console

from cli.arguments import (
    EXIT_ENGINE_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    add_endpoint_argument,
    add_verbose_flag,
    endpoints_from,
    model_set_from,
    parse_options,
)


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"reasoner: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="reasoner",
        description="Test-time reasoning on vLLM: solve prompts within a token budget with adaptive strategies.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser, metavar="COMMAND")

    solve = commands.add_parser("solve", help="solve one prompt and show the answer, usage and trace")
    solve.add_argument("prompt", help="the question to solve")
    solve.add_argument(
        "--budget", type=int, default=512, help="total generated tokens, all requests together (default 512)"
    )
    solve.add_argument("--thinking", type=int, default=None, help="tokens for the thinking phase (within --budget)")
    solve.add_argument(
        "--answer", type=int, default=None, help="tokens reserved for the final answer (within --budget)"
    )
    solve.add_argument("--samples", type=int, default=None, help="most samples a strategy may start")
    solve.add_argument("--deadline", type=float, default=None, help="seconds after which no new request starts")
    solve.add_argument(
        "--cost-budget",
        type=float,
        default=None,
        metavar="EFLOPS",
        help="cap on the solve's cost in eFLOPs, compute plus memory traffic (README: Cost), e.g. 5e12",
    )
    solve.add_argument(
        "--accelerator", default="H200", help="accelerator profile the cost is priced on (default: H200)"
    )
    solve.add_argument("--strategy", default="direct", help="strategy name (default: direct)")
    solve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]MODEL",
        help="HF model id or local folder (default: the embedded SmolLM2-135M); repeat as NAME=MODEL (or "
        "NAME=URL[,URL]) for several models, the first the default (README: Several models)",
    )
    solve.add_argument("--run-on", default=None, metavar="NAME", help="the model of the set the solve runs on")
    solve.add_argument(
        "--format",
        dest="answer_format",
        default="math",
        choices=["math", "code", "text"],
        help="how to extract the answer",
    )
    solve.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy option, e.g. -o temperature=0.7 (repeatable)",
    )
    solve.add_argument("--json", action="store_true", help="print the Solution as JSON instead of the rich view")
    solve.add_argument("--trace-html", default=None, metavar="FILE", help="also write the trace as an HTML page")
    add_endpoint_argument(solve)
    add_verbose_flag(solve)

    _add_eval_and_report_parsers(commands)
    _add_calibrate_parser(commands)
    from cli.trace_command import add_trace_parser

    add_trace_parser(commands)

    serve = commands.add_parser("serve", help="serve every strategy behind an OpenAI-compatible API")
    from server.main import add_serve_arguments

    add_serve_arguments(serve)
    add_endpoint_argument(serve)

    models = commands.add_parser("models", help="list available models; --provision fetches the embedded one")
    models.add_argument(
        "--provision", action="store_true", help="provision the embedded model now (needs the package index once)"
    )
    return parser


def _add_eval_and_report_parsers(commands: Any) -> None:
    run = commands.add_parser("eval", help="run strategies x budgets on a suite; resumable JSONL records")
    run.add_argument("--suite", required=True, help="suite name (gsm8k, math500, aime24, arith, countdown, ...)")
    run.add_argument("--strategies", required=True, help="comma-separated strategy names, e.g. direct,elastic")
    run.add_argument("--budgets", required=True, help="comma-separated token budgets, e.g. 256,1024")
    run.add_argument("--out", required=True, help="records file (JSONL); rerunning with the same file resumes")
    run.add_argument("--limit", type=int, default=None, help="at most this many problems (a seeded sample)")
    run.add_argument("--seed", type=int, default=0, help="seed for sampling and procedural suites (default 0)")
    run.add_argument(
        "--difficulty",
        type=int,
        default=None,
        help="level 1-5: procedural suites generate at it (default: mixed), MATH-500 keeps only it",
    )
    run.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep problems whose metadata matches, e.g. --filter level=5 (repeatable)",
    )
    run.add_argument("--data", default=None, help="folder or JSONL file with the suite data (default: $REASONER_DATA)")
    run.add_argument("--model", default=None, help="HF model id or local folder (default: the embedded SmolLM2-135M)")
    run.add_argument("--concurrency", type=int, default=16, help="solves in flight at once (default 16)")
    add_verbose_flag(run)
    run.add_argument(
        "--sandbox",
        default="jail",
        choices=["jail"],
        help="where generated code runs: the OS jail (the only choice; the in-process sandbox was removed)",
    )
    run.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy option for every strategy, or STRATEGY.KEY=VALUE for one (repeatable)",
    )

    add_endpoint_argument(run)

    report = commands.add_parser("report", help="compare strategies from eval records")
    report.add_argument("records", nargs="+", help="records files written by `reasoner eval`")
    report.add_argument(
        "--format", dest="output_format", default="table", choices=["table", "md", "csv", "json"], help="output format"
    )
    report.add_argument("--compare", default=None, metavar="S1,S2", help="paired bootstrap difference S1 - S2")
    report.add_argument(
        "--saturation-threshold",
        type=float,
        default=None,
        metavar="GAIN",
        help="accuracy gained per 1k more tokens below which a strategy counts as saturated "
        "(default 0.01: one point per 1k tokens)",
    )
    report.add_argument(
        "--plot",
        default=None,
        metavar="FILE",
        help="also plot accuracy vs tokens per strategy, Pareto front marked: FILE.png, .svg or .html (self-contained)",
    )


def _add_calibrate_parser(commands: Any) -> None:
    calibrate = commands.add_parser("calibrate", help="learn the `auto` policy (bin -> strategy, budget) from records")
    calibrate.add_argument("records", nargs="+", help="records files written by `reasoner eval`")
    calibrate.add_argument("--out", required=True, help="policy file to write (JSON), for -o policy_file=...")
    calibrate.add_argument(
        "--model",
        action="append",
        default=[],
        help="model the policy is for (default: the embedded SmolLM2-135M); repeat as NAME=MODEL for a `route` "
        "policy over several, the first the default (README: Routing)",
    )
    calibrate.add_argument(
        "--min-accuracy",
        type=float,
        default=None,
        help="pick each bin's cheapest configuration reaching this accuracy (default: the most accurate)",
    )
    calibrate.add_argument(
        "--saturation-threshold",
        type=float,
        default=None,
        metavar="GAIN",
        help="never allocate a configuration past its saturation budget: where it gains less accuracy than this "
        "per 1k more tokens (default 0.01, as `reasoner report` shows)",
    )
    calibrate.add_argument("--force", action="store_true", help="use records of another model than --model")
    calibrate.add_argument(
        "--estimator",
        default="pilot",
        choices=("pilot", "self_eval", "probe", "hidden"),
        help="difficulty estimator auto will bin on; it runs on every problem (default: pilot)",
    )
    calibrate.add_argument(
        "--representation",
        default="engine",
        choices=("engine", "input_embeddings"),
        help="hidden: the pooling engine's hidden state, or the cheaper mean input embedding",
    )
    calibrate.add_argument("--suite-path", default=None, help="data file or folder of the records' suite")
    add_endpoint_argument(calibrate)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `reasoner` console script."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if getattr(args, "verbose", False) else "ERROR")
    from reasoner.errors import EngineError, ReasonerError

    try:
        if args.command == "solve":
            return _solve(args)
        if args.command == "eval":
            from cli.eval_command import run_eval_command

            return run_eval_command(args)
        if args.command == "report":
            from cli.eval_command import run_report_command

            return run_report_command(args)
        if args.command == "serve":
            from server.main import run_serve

            check_serve_flags(args)
            return run_serve(args)
        if args.command == "trace":
            from cli.trace_command import run_trace_command

            return run_trace_command(args)
        if args.command == "calibrate":
            from cli.calibrate_command import run_calibrate_command

            return run_calibrate_command(args)
        return _models(args)
    except EngineError as exc:
        sys.stderr.write(f"reasoner: engine error: {exc}\n")
        return EXIT_ENGINE_ERROR
    except ReasonerError as exc:
        sys.stderr.write(f"reasoner: error: {exc}\n")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("reasoner: interrupted\n")
        return EXIT_INTERRUPTED


def check_serve_flags(args: argparse.Namespace) -> None:
    """Refuse `serve` flags out of their range before anything starts (the engine takes a minute)."""
    from reasoner.errors import InputError

    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be 1-65535, got {args.port}")
    if not math.isfinite(args.shutdown_timeout) or args.shutdown_timeout < 0:
        raise InputError(f"--shutdown-timeout must be a number of seconds, 0 or more, got {args.shutdown_timeout}")
    if args.budget > args.max_budget:
        raise InputError(f"--budget {args.budget} is more than --max-budget {args.max_budget}; raise --max-budget")


def _solve(args: argparse.Namespace) -> int:
    from cli.progress import engine_start_status, start_message
    from cli.render import render_solution
    from reasoner import Budget
    from reasoner.accelerators import get_accelerator
    from reasoner.output_files import check_output, write_output
    from reasoner.request_checks import validate_request

    budget = Budget(
        tokens=args.budget,
        thinking=args.thinking,
        answer=args.answer,
        samples=args.samples,
        deadline_s=args.deadline,
        cost=args.cost_budget,
    )
    accelerator = get_accelerator(args.accelerator)
    options = parse_options(args.option)
    validate_request(args.prompt, budget, args.strategy, args.answer_format, options)  # before any model work
    if args.trace_html is not None:
        check_output(args.trace_html, "--trace-html")
    console = Console(stderr=True)
    with _solve_reasoner(args, accelerator) as reasoner:
        reasoner.validate(
            args.prompt, budget, args.strategy, answer_format=args.answer_format, model=args.run_on, **options
        )
        with engine_start_status(console, start_message(reasoner.backend, ", ".join(reasoner.models))):
            reasoner.start()
        with console.status("Solving ..."):
            solution = reasoner.solve(
                args.prompt, budget, args.strategy, answer_format=args.answer_format, model=args.run_on, **options
            )
    if args.trace_html is not None:
        write_output(args.trace_html, solution.trace_html().encode(), "--trace-html")
    if args.json:
        sys.stdout.write(solution.model_dump_json() + "\n")
    else:
        render_solution(solution, Console())
    return 0


def _solve_reasoner(args: argparse.Namespace, accelerator: Any) -> Any:
    """The `Reasoner` of `reasoner solve`: one model (`--model`, `--endpoint`), or a named set (`--model NAME=...`)."""
    from reasoner import Reasoner
    from reasoner.errors import InputError, ModelError

    models = model_set_from(args.model, {})
    if models is None:
        if args.run_on is not None:
            raise InputError("--run-on names one of several models; give them as --model NAME=MODEL")
        model = args.model[0] if args.model else None
        return Reasoner(model, endpoint=endpoints_from(args), verbose=args.verbose, accelerator=accelerator)
    if endpoints_from(args):
        raise InputError("--endpoint runs one model; with several, give each its URL: --model NAME=URL")
    if args.run_on is not None and args.run_on not in models:
        raise ModelError(f"unknown model {args.run_on!r} in --run-on; the models are {', '.join(models)}")
    return Reasoner(models=models, verbose=args.verbose, accelerator=accelerator)


def _models(args: argparse.Namespace) -> int:
    from rich.table import Table

    from reasoner.models import list_models, provision_embedded_model

    console = Console()
    if args.provision:
        with Console(stderr=True).status("Provisioning the embedded model ..."):
            provision_embedded_model()
    table = Table(title="models")
    for column in ("name", "provisioned", "location", "note"):
        table.add_column(column)
    for row in list_models():
        table.add_row(row.name, "yes" if row.provisioned else "no", row.location, row.note)
    console.print(table)
    return 0
