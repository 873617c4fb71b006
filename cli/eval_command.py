"""The `reasoner eval` and `reasoner report` commands (argument parsing lives in `cli.main`).

Everything a user can get wrong is checked before the engine starts: the budgets, the
strategies and their options, the suite and its data, and the records file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rich.console import Console

from cli.arguments import EXIT_ENGINE_ERROR, endpoints_from, parse_options
from cli.progress import EvalProgress, engine_start_status, start_message
from evals.records import RecordWriter
from evals.report import load_report, render_csv, render_json, render_markdown, render_rich
from evals.runner import EvalPlan, EvalResult, arun_eval, check_plan, make_plan, parse_budgets
from evals.saturation import DEFAULT_MIN_GAIN_PER_1K_TOKENS
from evals.suites import SuiteProblems, load_suite
from reasoner.api import Reasoner
from reasoner.errors import InputError, SuiteError
from reasoner.output_files import check_output, write_output

REPORT_WIDTH = 120


def run_eval_command(args: argparse.Namespace) -> int:
    """Validate, start the engine, run the grid with a progress display, and summarise."""
    budgets = parse_budgets(args.budgets)
    endpoints = endpoints_from(args)
    plan = make_plan(
        args.suite,
        args.strategies.split(","),
        budgets,
        parse_options(args.option),
        seed=args.seed,
        concurrency=args.concurrency,
        sandbox=args.sandbox,
    )
    filters = parse_options(args.filter)
    reserved = {"difficulty": "--difficulty", "limit": "--limit", "seed": "--seed", "path": "--data"}
    if clashes := sorted(reserved.keys() & filters.keys()):
        raise InputError(f"--filter {clashes[0]}=... is not a metadata filter; use {reserved[clashes[0]]} instead")
    problems = load_suite(
        args.suite, path=args.data, limit=args.limit, seed=args.seed, difficulty=args.difficulty, **filters
    )
    if not problems:
        raise SuiteError(f"suite {args.suite!r} has no problems left after the filters {filters or ''}")
    err = Console(stderr=True)
    _warn_malformed(problems, err)
    writer = RecordWriter(args.out).open()  # checked and locked before the engine starts, held to the end
    try:
        reasoner = Reasoner(args.model, endpoint=endpoints, verbose=args.verbose)
        result = asyncio.run(_run(reasoner, plan, problems, writer, err))
    finally:
        writer.close()
    accuracy = "n/a" if result.accuracy is None else f"{result.accuracy:.1%}"
    sys.stdout.write(
        f"wrote {result.written} records to {args.out} ({result.skipped} already there), "
        f"accuracy of new records {accuracy}, {result.generated_tokens} tokens in {result.elapsed_s:.1f} s\n"
    )
    if result.failures:
        sys.stderr.write(
            f"reasoner: {len(result.failures)} results failed and were not written "
            f"(first: {result.failures[0].error}); rerun the same command to retry them\n"
        )
        return EXIT_ENGINE_ERROR
    return 0


async def _run(
    reasoner: Reasoner, plan: EvalPlan, problems: SuiteProblems, out: RecordWriter, err: Console
) -> EvalResult:
    async with reasoner:
        check_plan(reasoner, plan, problems)
        with engine_start_status(err, start_message(reasoner.backend, reasoner.model_name)):
            await reasoner.astart()
        with EvalProgress(err) as progress:
            return await arun_eval(reasoner, plan, problems, out, on_start=progress.begin, on_record=progress.update)


def _warn_malformed(problems: SuiteProblems, err: Console) -> None:
    if problems.malformed_lines:
        lines = ", ".join(str(number) for number in problems.malformed_lines)
        err.print(
            f"skipped {len(problems.malformed_lines)} malformed lines in {problems.source}: line {lines}",
            highlight=False,
        )


def run_report_command(args: argparse.Namespace) -> int:
    """Build the report from the records files, print it in the chosen format, and write `--plot` if asked."""
    compare = None
    if args.compare is not None:
        names = [name.strip() for name in args.compare.split(",") if name.strip()]
        if len(names) != 2:
            raise InputError(f"--compare takes two strategy names like direct,elastic, got {args.compare!r}")
        compare = (names[0], names[1])
    plot_format = None
    if args.plot is not None:
        from evals import plots  # matplotlib: imported only when a plot is asked for

        plot_format = plots.plot_format(args.plot)
        check_output(args.plot, "--plot")  # before the records are read: a user's file is refused at once
    threshold = DEFAULT_MIN_GAIN_PER_1K_TOKENS if args.saturation_threshold is None else args.saturation_threshold
    report = load_report(args.records, compare, threshold)
    if args.plot is not None and plot_format is not None:
        write_output(args.plot, plots.render_plot(report, plot_format), "--plot")
        sys.stderr.write(f"wrote the plot to {args.plot}\n")
    renderers = {"md": render_markdown, "csv": render_csv, "json": render_json}
    if args.output_format in renderers:
        sys.stdout.write(renderers[args.output_format](report))
    else:
        render_rich(report, Console(width=None if sys.stdout.isatty() else REPORT_WIDTH))
    return 0
