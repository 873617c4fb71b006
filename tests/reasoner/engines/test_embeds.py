"""The bfloat16 conversion of prompt embeddings: torch's rounding, bit for bit, without torch's threads."""

from __future__ import annotations

import numpy as np
import torch

from reasoner.engines.embeds import bfloat16_tensor


def torch_bits(values: np.ndarray) -> list[int]:
    return torch.from_numpy(values.copy()).to(torch.bfloat16).view(torch.int16).flatten().tolist()


def our_bits(values: np.ndarray) -> list[int]:
    return bfloat16_tensor(values).view(torch.int16).flatten().tolist()


def test_finite_and_infinite_values_round_as_torch_does() -> None:
    rng = np.random.default_rng(0)
    spread = rng.standard_normal((200, 64)) * 10.0 ** rng.integers(-45, 39, (200, 64))
    ties = 1.0 + np.array([2**-8, 3 * 2**-8, 2**-8 + 2**-20, 2**-9, 5 * 2**-9])  # halfway cases round to even
    edges = [0.0, -0.0, np.inf, -np.inf, 3.4028235e38, -3.4028235e38, 1e-45, -1e-45, 1.17e-38, 3.3961e38]
    for values in (spread.astype(np.float32), ties.astype(np.float32), np.array(edges, dtype=np.float32)):
        assert our_bits(values) == torch_bits(values)


def test_every_nan_becomes_one_quiet_nan_and_the_shape_and_dtype_hold() -> None:
    patterns = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF, 0x7FFFFFFF], dtype=np.uint32)
    converted = bfloat16_tensor(patterns.view(np.float32))
    assert converted.dtype == torch.bfloat16
    assert {bits & 0xFFFF for bits in converted.view(torch.int16).tolist()} == {0x7FC0}
    rows = np.arange(12, dtype=np.float64).reshape(3, 4)  # any float dtype, any layout
    assert bfloat16_tensor(rows[:, ::2]).shape == (3, 2)
    assert bfloat16_tensor(rows[:, ::2]).float().tolist() == [[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]]
