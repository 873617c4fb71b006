"""The `reasoner trace` command: a solve's trace as a self-contained HTML page.

It reads the JSON `reasoner solve --json` prints (a `Solution`), bounded in size and checked
field by field; a file that is not one is refused with one line naming the first problem.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import networkx as nx
from pydantic import ValidationError

from reasoner.errors import InputError
from reasoner.output_files import check_output, write_output
from reasoner.regular_files import READ_FLAGS, refuse_unless_regular
from reasoner.solution import Solution

MAX_SOLUTION_BYTES = 256 * 2**20
"""A larger file is refused unread: a solve's JSON with thousands of segments is a few MiB."""


def add_trace_parser(commands: Any) -> None:
    trace = commands.add_parser("trace", help="draw a solve's trace as one self-contained HTML page")
    trace.add_argument("solution", help="a Solution as JSON, from `reasoner solve --json > FILE`")
    trace.add_argument("-o", "--out", required=True, help="the page to write (HTML; a file of yours is never replaced)")


def run_trace_command(args: argparse.Namespace) -> int:
    """Read the solution, write its trace page, and say where."""
    check_output(args.out, "-o")
    solution = read_solution(args.solution)
    write_output(args.out, solution.trace_html().encode(), "-o")
    sys.stdout.write(f"wrote the trace ({solution.trace.number_of_nodes()} segments) to {args.out}\n")
    return 0


def read_solution(path: str) -> Solution:
    """The `Solution` in a JSON file, or an `InputError` saying why the file is not one."""
    try:
        descriptor = os.open(path, READ_FLAGS)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    refuse_unless_regular(
        descriptor,
        InputError,
        f"{path} is not a regular file; pass the file `reasoner solve --json` wrote",
        max_bytes=MAX_SOLUTION_BYTES,
        too_large=f"{path} is larger than {MAX_SOLUTION_BYTES // 2**20} MiB; it is no solve's JSON",
    )
    with open(descriptor, "rb") as handle:
        content = handle.read(MAX_SOLUTION_BYTES + 1)
    try:
        return Solution.model_validate_json(content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        raise InputError(
            f"{path} is not a solution from `reasoner solve --json`: {where}: {first['msg'][:200]}"
        ) from None
    except (ValueError, TypeError, KeyError, nx.NetworkXError, RecursionError) as exc:
        raise InputError(
            f"{path} is not a solution from `reasoner solve --json`: its trace does not load ({str(exc)[:200]})"
        ) from None
