"""Prompt embeddings as the engine takes them: a bfloat16 tensor, converted without torch's thread pool.

The conversion rounds to nearest, ties to even, as torch's `.to(torch.bfloat16)` does, and maps
every NaN to one quiet NaN (torch's own NaN pattern differs between its code paths), so equal
embeddings stay equal bytes (the prefix cache and the tail connector key on them). It runs in
numpy on the calling thread: torch's own conversion wakes its intra-op threads, which on a
machine whose cores the engine keeps busy made one conversion take about a millisecond on the
event loop instead of tens of microseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

_QUIET_NAN = np.uint16(0x7FC0)


def _bfloat16_bits(embeds: np.ndarray) -> np.ndarray:
    """The bfloat16 bit patterns (uint16) of `embeds`, rounded to nearest even."""
    floats = np.ascontiguousarray(embeds, dtype=np.float32)
    bits = floats.view(np.uint32)
    rounded = bits >> np.uint32(16)
    rounded &= np.uint32(1)
    rounded += np.uint32(0x7FFF)
    rounded += bits
    rounded >>= np.uint32(16)
    halves = rounded.astype(np.uint16)
    nan = np.isnan(floats)
    if nan.any():
        halves[nan] = _QUIET_NAN
    return halves


def bfloat16_tensor(embeds: np.ndarray) -> torch.Tensor:
    """`embeds` as a bfloat16 torch tensor: what `.to(torch.bfloat16)` gives, bit for bit but for NaN's payload."""
    import torch

    return torch.from_numpy(_bfloat16_bits(embeds)).view(torch.bfloat16)
