"""A small difficulty probe (DiffAdapt-like): logistic regression in numpy.

It maps cheap per-prompt features (prompt length, entropy of the first generated tokens,
pilot statistics: whatever the caller measured, by name) to the probability that the model
gets the prompt wrong, which is the difficulty. Features are standardised with the training
mean and deviation; weights are fitted by gradient descent with L2 regularisation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reasoner.errors import StrategyError


class ProbeError(StrategyError):
    """A probe file is missing or malformed, or training data is unusable."""


@dataclass
class Probe:
    """Logistic regression over named features; `predict` gives P(wrong) in [0, 1]."""

    feature_names: tuple[str, ...]
    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray

    def predict(self, features: dict[str, float]) -> float:
        """The probability that the prompt with these features is answered wrongly."""
        missing = [name for name in self.feature_names if name not in features]
        if missing:
            raise ProbeError(f"the probe needs the feature {missing[0]!r}; it was trained on {self.feature_names}")
        row = np.array([features[name] for name in self.feature_names], dtype=float)
        return float(_sigmoid(((row - self.mean) / self.scale) @ self.weights + self.bias))

    def accuracy(self, rows: Sequence[dict[str, float]], wrong: Sequence[bool]) -> float:
        """Share of rows where P(wrong) >= 0.5 matches the label."""
        if not rows:
            raise ProbeError("no rows to measure the probe's accuracy on")
        hits = [(self.predict(row) >= 0.5) == label for row, label in zip(rows, wrong, strict=True)]
        return float(np.mean(hits))

    def to_json(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")


def train_probe(
    rows: Sequence[dict[str, float]],
    wrong: Sequence[bool],
    *,
    l2: float = 0.01,
    steps: int = 2000,
    learning_rate: float = 0.5,
) -> Probe:
    """Fit a probe to feature rows and labels (True = the model answered wrongly)."""
    if len(rows) != len(wrong):
        raise ProbeError(f"got {len(rows)} feature rows for {len(wrong)} labels; pass one label per row")
    if len(rows) < 2:
        raise ProbeError(f"a probe needs at least 2 training rows, got {len(rows)}")
    names = tuple(sorted(rows[0]))
    if not names:
        raise ProbeError("the feature rows are empty; measure at least one feature per prompt")
    for index, row in enumerate(rows):
        if tuple(sorted(row)) != names:
            raise ProbeError(f"feature row {index} has features {sorted(row)}, the first has {list(names)}")
    matrix = np.array([[row[name] for name in names] for row in rows], dtype=float)
    labels = np.array([1.0 if label else 0.0 for label in wrong])
    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0)
    scale[scale == 0.0] = 1.0
    standard = (matrix - mean) / scale
    weights = np.zeros(len(names))
    bias = float(np.log((labels.mean() + 1e-3) / (1.0 - labels.mean() + 1e-3)))
    for _ in range(steps):
        error = _sigmoid(standard @ weights + bias) - labels
        weights -= learning_rate * (standard.T @ error / len(labels) + l2 * weights)
        bias -= learning_rate * float(error.mean())
    return Probe(names, weights, bias, mean, scale)


def load_probe(path: str | Path) -> Probe:
    """Read a probe written by `Probe.save`; errors name the missing or mistyped field."""
    source = Path(path)
    if not source.is_file():
        raise ProbeError(f"no probe file at {source}; train one with controllers.probe.train_probe and save it")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ProbeError(f"probe file {source} is not JSON ({exc})") from None
    return probe_from_json(data, str(source))


def probe_from_json(data: Any, where: str = "probe") -> Probe:
    if not isinstance(data, dict):
        raise ProbeError(f"{where}: the probe must be a JSON object")
    for name in ("feature_names", "weights", "bias", "mean", "scale"):
        if name not in data:
            raise ProbeError(f"{where}: field {name!r} is missing")
    names = tuple(str(item) for item in data["feature_names"])
    arrays = {name: np.asarray(data[name], dtype=float) for name in ("weights", "mean", "scale")}
    for name, array in arrays.items():
        if array.shape != (len(names),):
            raise ProbeError(f"{where}: field {name!r} must hold {len(names)} numbers, one per feature")
    return Probe(names, arrays["weights"], float(data["bias"]), arrays["mean"], arrays["scale"])


def _sigmoid(value: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-np.clip(value, -30.0, 30.0)))
