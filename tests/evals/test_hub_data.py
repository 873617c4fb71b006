from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from evals import suites
from reasoner.errors import SuiteError

GSM8K_ROWS = [
    {"question": "Tom has 2 apples and buys 3. How many?", "answer": "2 + 3 = 5\n#### 5"},
    {"question": "What is 10 - 4?", "answer": "#### 6"},
]


@pytest.fixture
def empty_default_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("REASONER_DATA", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(suites, "DEFAULT_DATA_DIR", tmp_path)
    monkeypatch.setattr(suites, "packaged_file", lambda file_name: None)  # a suite the package does not ship
    return tmp_path


def fake_datasets(calls: list[tuple[Any, ...]]) -> types.ModuleType:
    module = types.ModuleType("datasets")

    def load_dataset(dataset: str, config: str | None, split: str) -> list[dict[str, str]]:
        calls.append((dataset, config, split))
        return GSM8K_ROWS

    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    return module


def test_a_missing_suite_is_fetched_from_the_hub_once(
    empty_default_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setitem(sys.modules, "datasets", fake_datasets(calls))
    problems = suites.load_suite("gsm8k")
    assert [problem.reference for problem in problems] == ["5", "6"]
    assert calls == [("openai/gsm8k", "main", "test")]
    assert (empty_default_data / "gsm8k_test.jsonl").is_file()
    suites.load_suite("gsm8k")
    assert len(calls) == 1


def test_without_datasets_the_error_says_how_to_get_it(
    empty_default_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(SuiteError, match="datasets` is not installed"):
        suites.load_suite("gsm8k")


def test_offline_mode_does_not_touch_the_hub(empty_default_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setitem(sys.modules, "datasets", fake_datasets(calls))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SuiteError, match="hub is switched off"):
        suites.load_suite("gsm8k")
    assert calls == []


def test_an_explicit_path_is_never_replaced_by_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setitem(sys.modules, "datasets", fake_datasets(calls))
    with pytest.raises(SuiteError, match="looked for"):
        suites.load_suite("gsm8k", path=str(tmp_path / "mine"))
    assert calls == []
