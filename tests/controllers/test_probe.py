from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from controllers.probe import ProbeError, load_probe, train_probe


def separable_rows(count: int, seed: int = 0) -> tuple[list[dict[str, float]], list[bool]]:
    rng = np.random.default_rng(seed)
    rows, wrong = [], []
    for _ in range(count):
        hard = bool(rng.integers(0, 2))
        rows.append({"entropy": float(rng.normal(0.8 if hard else 0.2, 0.05)), "length": float(rng.normal(40, 5))})
        wrong.append(hard)
    return rows, wrong


def test_probe_learns_a_separable_signal_and_reports_held_out_accuracy() -> None:
    rows, wrong = separable_rows(80)
    probe = train_probe(rows[:40], wrong[:40])
    assert probe.accuracy(rows[40:], wrong[40:]) >= 0.95


def test_probe_round_trips_through_save_and_load(tmp_path: Path) -> None:
    rows, wrong = separable_rows(30)
    probe = train_probe(rows, wrong)
    path = tmp_path / "probe.json"
    probe.save(path)
    loaded = load_probe(path)
    assert [loaded.predict(row) for row in rows] == pytest.approx([probe.predict(row) for row in rows])


def test_probe_file_missing_a_field_names_it(tmp_path: Path) -> None:
    rows, wrong = separable_rows(10)
    data = train_probe(rows, wrong).to_json()
    del data["scale"]
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProbeError, match="'scale' is missing"):
        load_probe(path)


def test_probe_refuses_rows_with_different_features() -> None:
    with pytest.raises(ProbeError, match="feature row 1"):
        train_probe([{"a": 1.0}, {"b": 2.0}], [True, False])
