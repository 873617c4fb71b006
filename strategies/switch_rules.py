"""When to think in latent soft tokens and when in explicit sampled tokens.

A rule sees each thinking step's next-token confidence (entropy, max probability) and
says how that step is fed back: `"latent"` (the soft mixture), `"explicit"` (the sampled
token), or `None` to end thinking. Every rule counts its switches and ends thinking
instead of switching past `max_switches`.

- `SwiReasoning` (Shi et al., 2025): block-wise confidence from the entropy trend. The
  entropy at a block's first step is its reference; once the block is `min_block` steps
  long, entropy below the reference (confidence rising) in a latent block switches to
  explicit to commit, and entropy above it in an explicit block switches to latent to
  explore.
- `ThinkRouter`: per step, the discrete token when the max probability is below a
  threshold (low confidence), the latent mixture when it is at or above it.
- `FixedMode`: one mode throughout (latent-only Soft Thinking, or plain explicit thinking).
"""

from __future__ import annotations

import abc
from typing import Literal

Mode = Literal["latent", "explicit"]


class SwitchRule(abc.ABC):
    """Per-step mode decisions with a cap on switches; subclasses say which mode a step wants."""

    def __init__(self, start_mode: Mode, max_switches: int, min_block: int = 1):
        if max_switches < 0:
            raise ValueError(f"max_switches must be >= 0, got {max_switches}")
        if min_block < 1:
            raise ValueError(f"min_block must be >= 1, got {min_block}")
        self.mode: Mode = start_mode
        self.max_switches = max_switches
        self.min_block = min_block
        self.switches = 0
        self.block_steps = 0
        self.capped = False

    def observe(self, entropy: float, max_prob: float) -> Mode | None:
        """The mode for this step, or None when the rule wants a switch past the cap (thinking ends)."""
        if self.capped:
            return None
        wanted = self.wants(entropy, max_prob)
        if wanted != self.mode:
            if self.switches >= self.max_switches:
                self.capped = True
                return None
            self.switches += 1
            self.mode = wanted
            self.block_steps = 0
        self.block_steps += 1
        return self.mode

    @abc.abstractmethod
    def wants(self, entropy: float, max_prob: float) -> Mode:
        """The mode this step asks for, before the switch cap is applied."""


class SwiReasoning(SwitchRule):
    """Switch on the entropy trend within a block; see the module docstring."""

    def __init__(self, start_mode: Mode = "latent", max_switches: int = 8, min_block: int = 4):
        super().__init__(start_mode, max_switches, min_block)
        self.reference: float | None = None

    def wants(self, entropy: float, max_prob: float) -> Mode:
        if self.reference is None:
            self.reference = entropy
            return self.mode
        if self.block_steps < self.min_block:
            return self.mode
        if self.mode == "latent" and entropy < self.reference:
            return "explicit"
        if self.mode == "explicit" and entropy > self.reference:
            return "latent"
        return self.mode

    def observe(self, entropy: float, max_prob: float) -> Mode | None:
        switches = self.switches
        mode = super().observe(entropy, max_prob)
        if self.switches != switches:
            self.reference = entropy
        return mode


class ThinkRouter(SwitchRule):
    """Route each step by confidence: explicit below `threshold`, latent at or above it."""

    def __init__(self, threshold: float, start_mode: Mode = "latent", max_switches: int = 8):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        super().__init__(start_mode, max_switches)
        self.threshold = threshold

    def wants(self, entropy: float, max_prob: float) -> Mode:
        return "latent" if max_prob >= self.threshold else "explicit"


class FixedMode(SwitchRule):
    """Never switch: every step in `mode`."""

    def __init__(self, mode: Mode):
        super().__init__(mode, max_switches=0)

    def wants(self, entropy: float, max_prob: float) -> Mode:
        return self.mode
