"""When to think in latent soft tokens and when in explicit sampled tokens.

A rule sees each thinking step's next-token confidence (entropy, max probability) and
says how that step is fed back: `"latent"` (the soft mixture) or `"explicit"` (the sampled
token). It counts every switch (`switches`) and the latent->explicit ones (`commits`);
`capped` turns true when a capped rule wants thinking closed and the answer forced.

- `SwiReasoning` (Shi et al., 2025): block-wise confidence from the entropy trend. The
  entropy at the first step, and again at every switch, is the reference. In a latent
  block, entropy below the reference (confidence rising) switches to explicit at once; in
  an explicit block, entropy above it switches back to latent only once the block has
  lasted `window` steps (the dwell window). Only latent->explicit switches count toward
  `max_switches`; the switch that reaches it closes thinking (`capped`).
- `ThinkRouter`: every step is routed by its own confidence: the discrete token when the
  max probability is below a threshold, the latent mixture at or above it. No cap: its
  thinking ends at the close delimiter or the budget.
- `FixedMode`: one mode throughout (latent-only Soft Thinking, or plain explicit thinking).
"""

from __future__ import annotations

import abc
from typing import Literal

Mode = Literal["latent", "explicit"]


class SwitchRule(abc.ABC):
    """Per-step mode decisions; subclasses say which mode a step wants.

    `max_switches` caps the latent->explicit switches (None: no cap). `switched` tells
    whether the last observed step changed the mode.
    """

    def __init__(self, start_mode: Mode, max_switches: int | None = None):
        if max_switches is not None and max_switches < 1:
            raise ValueError(f"max_switches must be >= 1 or None (no cap), got {max_switches}")
        self.mode: Mode = start_mode
        self.max_switches = max_switches
        self.switches = 0
        self.commits = 0
        self.steps_in_mode = 0
        self.switched = False
        self.capped = False

    def observe(self, entropy: float, max_prob: float) -> Mode:
        """The mode for this step; after a capped rule's last allowed switch, `capped` is True."""
        if self.capped:
            raise RuntimeError("the rule reached its switch cap; thinking is over")
        wanted = self.wants(entropy, max_prob)
        self.switched = wanted != self.mode
        if self.switched:
            self.switches += 1
            self.commits += wanted == "explicit"
            self.mode = wanted
            self.steps_in_mode = 0
            self.on_switch(entropy)
            self.capped = self.max_switches is not None and wanted == "explicit" and self.commits >= self.max_switches
        self.steps_in_mode += 1
        return self.mode

    @abc.abstractmethod
    def wants(self, entropy: float, max_prob: float) -> Mode:
        """The mode this step asks for."""

    def on_switch(self, entropy: float) -> None:  # noqa: B027 - an optional hook; most rules keep no state
        """Called on every switch with the step's entropy."""


class SwiReasoning(SwitchRule):
    """Switch on the entropy trend since the last switch; see the module docstring."""

    def __init__(self, start_mode: Mode = "latent", max_switches: int | None = 8, window: int = 32):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        super().__init__(start_mode, max_switches)
        self.window = window
        self.reference: float | None = None

    def wants(self, entropy: float, max_prob: float) -> Mode:
        if self.reference is None:
            self.reference = entropy
            return self.mode
        if self.mode == "latent" and entropy < self.reference:
            return "explicit"
        if self.mode == "explicit" and self.steps_in_mode >= self.window and entropy > self.reference:
            return "latent"
        return self.mode

    def on_switch(self, entropy: float) -> None:
        self.reference = entropy


class ThinkRouter(SwitchRule):
    """Route each step by confidence: explicit below `threshold`, latent at or above it; never capped."""

    def __init__(self, threshold: float, start_mode: Mode = "latent"):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        super().__init__(start_mode)
        self.threshold = threshold

    def wants(self, entropy: float, max_prob: float) -> Mode:
        return "latent" if max_prob >= self.threshold else "explicit"


class FixedMode(SwitchRule):
    """Never switch: every step in `mode`."""

    def __init__(self, mode: Mode):
        super().__init__(mode)

    def wants(self, entropy: float, max_prob: float) -> Mode:
        return self.mode
