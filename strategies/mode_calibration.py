"""Calibration of the `mode` dial: how long a model thinks when left to think (high mode).

`calibrate_mode` runs elastic thinking with a generous thinking budget on a list of
prompts and stores, per model in `reasoner_home() / "profiles" / "<model>.json"` under the
key `"mode"`, the median thinking length and a per-prompt length model: a least-squares line
of log(thinking tokens + 1) on log(question tokens), so a longer (typically harder) question
is expected to think longer. The `mode` strategy reads it back with `load_mode_calibration`
and `ModeCalibration.expected_high_tokens(question_tokens)` gives each prompt its own
estimated high-mode length; without a calibration, medium and low take their shares of the
thinking budget instead (see `strategies.mode`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from reasoner import Budget, ModelError, Reasoner, Solution
from reasoner.models import reasoner_home

CALIBRATION_KEY = "mode"


class ModeCalibration(BaseModel):
    """Measured high-mode thinking lengths of one model."""

    model: str = Field(description="The backend's model name the calibration belongs to.")
    high_thinking_tokens: int = Field(ge=1, description="Median thinking tokens in high mode.")
    prompts: int = Field(ge=1, description="How many prompts were measured.")
    thinking_budget: int = Field(ge=1, description="The thinking budget the measurement ran with.")
    cut_fraction: float = Field(
        ge=0.0, le=1.0, description="Share of prompts whose thinking hit the budget (high: raise the budget)."
    )
    length_intercept: float | None = Field(
        default=None, description="Per-prompt model: log(thinking + 1) = intercept + slope * log(question tokens)."
    )
    length_slope: float | None = Field(default=None, description="Slope of the per-prompt length model.")

    def expected_high_tokens(self, question_tokens: int) -> int:
        """The high-mode thinking length expected for a question of this many tokens (the median without a model)."""
        if self.length_intercept is None or self.length_slope is None:
            return self.high_thinking_tokens
        log_length = self.length_intercept + self.length_slope * math.log(max(question_tokens, 1))
        return max(1, min(self.thinking_budget, round(math.exp(log_length) - 1)))


def calibration_path(model: str) -> Path:
    """The profile-cache file that holds `model`'s calibrations."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    return reasoner_home() / "profiles" / f"{slug}.json"


def load_mode_calibration(model: str) -> ModeCalibration | None:
    """The stored mode calibration of `model`, or None when it was never calibrated."""
    path = calibration_path(model)
    stored = _read_profile_file(path).get(CALIBRATION_KEY)
    if stored is None:
        return None
    try:
        return ModeCalibration(**stored)
    except (TypeError, ValidationError) as exc:
        raise _unreadable(path, exc) from None


def load_high_thinking_tokens(model: str) -> int | None:
    """The calibrated median high-mode thinking length of `model`, or None when it was never calibrated."""
    calibration = load_mode_calibration(model)
    return None if calibration is None else calibration.high_thinking_tokens


def calibrate_mode(
    reasoner: Reasoner, prompts: Sequence[str], *, thinking_budget: int = 1024, answer_budget: int = 64
) -> ModeCalibration:
    """Measure `reasoner`'s high-mode thinking length on `prompts` and store it; see the module docstring."""
    solutions = reasoner.solve_many(
        list(prompts),
        _budget(thinking_budget, answer_budget),
        strategy="elastic",
        budget_per_prompt=True,
    )
    lengths = _question_tokens(reasoner, prompts)
    return store_calibration(reasoner.backend.capabilities.name, solutions, thinking_budget, lengths)


async def acalibrate_mode(
    reasoner: Reasoner, prompts: Sequence[str], *, thinking_budget: int = 1024, answer_budget: int = 64
) -> ModeCalibration:
    """Async `calibrate_mode`."""
    solutions = await reasoner.asolve_many(
        list(prompts),
        _budget(thinking_budget, answer_budget),
        strategy="elastic",
        budget_per_prompt=True,
    )
    lengths = _question_tokens(reasoner, prompts)
    name = reasoner.backend.capabilities.name
    return await asyncio.to_thread(store_calibration, name, solutions, thinking_budget, lengths)


def store_calibration(
    model: str, solutions: Sequence[Solution], thinking_budget: int, question_tokens: Sequence[int] | None = None
) -> ModeCalibration:
    """Summarise elastic solutions into a `ModeCalibration` and write it to the profile cache."""
    lengths = [int(solution.metrics["thinking_tokens"] or 0) for solution in solutions]
    cut = sum(bool(solution.metrics["thinking_cut"]) for solution in solutions)
    intercept, slope = _length_model(question_tokens, lengths) if question_tokens else (None, None)
    calibration = ModeCalibration(
        model=model,
        high_thinking_tokens=max(1, round(statistics.median(lengths))),
        prompts=len(lengths),
        thinking_budget=thinking_budget,
        cut_fraction=cut / len(lengths),
        length_intercept=intercept,
        length_slope=slope,
    )
    path = calibration_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = _read_profile_file(path)
    stored[CALIBRATION_KEY] = calibration.model_dump()
    path.write_text(json.dumps(stored, indent=2) + "\n")
    return calibration


def _question_tokens(reasoner: Reasoner, prompts: Sequence[str]) -> list[int]:
    tokenizer = reasoner.backend.tokenizer()
    return [len(tokenizer.encode(prompt)) for prompt in prompts]


def _length_model(question_tokens: Sequence[int], thinking_tokens: Sequence[int]) -> tuple[float, float]:
    """Least squares of log(thinking + 1) on log(question tokens); a flat line when lengths do not vary."""
    x = np.log(np.maximum(np.asarray(question_tokens, dtype=float), 1.0))
    y = np.log(np.asarray(thinking_tokens, dtype=float) + 1.0)
    if len(x) < 2 or float(np.ptp(x)) == 0.0:
        return float(np.median(y)), 0.0
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def _budget(thinking_budget: int, answer_budget: int) -> Budget:
    return Budget(tokens=thinking_budget + answer_budget, thinking=thinking_budget, answer=answer_budget)


def _read_profile_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    if not isinstance(stored, dict):
        raise _unreadable(path, TypeError("not a JSON object"))
    return stored


def _unreadable(path: Path, cause: Exception) -> ModelError:
    return ModelError(
        f"the calibration file {str(path)!r} is unreadable ({cause}); delete it or run calibrate_mode again"
    )
