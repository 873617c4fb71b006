"""The price table: dollars per million tokens per model, and its typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasoner.errors import CostError
from reasoner.prices import PriceTable
from reasoner.solution import Usage

TABLE = {"small": {"input": 0.10, "output": 0.40, "cached_input": 0.025}, "large": {"input": 1.0, "output": 4.0}}


def test_a_usage_is_priced_by_its_model_with_cached_prompt_tokens_cheaper() -> None:
    usage = Usage(prompt_tokens=1_000_000, cached_prompt_tokens=400_000, generated_tokens=500_000)
    table = PriceTable(TABLE)
    # small: 600k x 0.10 + 400k x 0.025 + 500k x 0.40 per million = 0.06 + 0.01 + 0.20
    assert table.price("small", usage) == pytest.approx(0.27)
    # large has no cached price: every prompt token at input, 1.0 + 2.0
    assert table.price("large", usage) == pytest.approx(3.0)


def test_a_table_is_read_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(TABLE))
    assert PriceTable.from_file(path).price("large", Usage(generated_tokens=1000)) == pytest.approx(0.004)


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"small": {"input": -0.1, "output": 0.4}}, "small.input"),
        ({"small": {"input": 0.1}}, "small.output: Field required"),
        ({"small": {"input": 0.1, "output": float("inf")}}, "small.output"),
        ({"small": {"input": 0.1, "output": 0.4, "cached_input": -1}}, "small.cached_input"),
        ({"small": {"input": 0.1, "output": 0.4, "reasoning": 1}}, "small.reasoning"),
        ({"small": "cheap"}, "small"),
        ([1, 2], "prices"),
    ],
)
def test_a_bad_table_is_a_cost_error_naming_the_entry(table: object, fragment: str) -> None:
    with pytest.raises(CostError, match="invalid price table") as caught:
        PriceTable(table)
    assert fragment in str(caught.value)


def test_an_unpriced_model_and_an_unreadable_file_are_cost_errors(tmp_path: Path) -> None:
    with pytest.raises(CostError, match="no price for model 'medium' in the price table; priced: small, large"):
        PriceTable(TABLE).price("medium", Usage())
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CostError, match="cannot read the price table"):
        PriceTable.from_file(tmp_path / "bad.json")
