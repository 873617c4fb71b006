"""When to think in latent soft tokens and when in explicit sampled tokens.

A rule sees each thinking step's next-token confidence (entropy, max probability) and
says how that step is fed back: `"latent"` (the soft mixture) or `"explicit"` (the sampled
token). It counts every switch (`switches`) and the latent->explicit ones (`commits`);
a capped rule says at each commit what its cap asks (`cap_action`).

- `SwiReasoning` (Shi et al., 2025): block-wise confidence from the entropy trend. The
  entropy at the first step, and again at every switch, is the reference. In a latent
  block, entropy below the reference (confidence rising) switches to explicit at once; in
  an explicit block, entropy above it switches back to latent only once the block has
  lasted `window` steps (the dwell window). Only latent->explicit switches count toward
  `max_switches` (C_max), in two stages as in the reference: each commit from the C_max-th to
  the 2*C_max-th asks to inject the close-thinking delimiter and let the model go on
  (`cap_action == "close"`); the commit past 2*C_max asks to force the answer (`"force"`,
  after which the rule takes no more steps).
- `ThinkRouter`: every step is routed by its own confidence: the discrete token when the
  max probability is below a threshold, the latent mixture at or above it. No cap; its
  thinking ends at the close delimiter, Cold Stop or the budget.
- `FixedMode`: one mode throughout (latent-only Soft Thinking, or plain explicit thinking).
- `ColdStop` (Soft Thinking, which ThinkRouter uses): thinking ends once the entropy has stayed
  below a threshold for a run of consecutive steps; the model is sure, more steps add nothing.
"""

from __future__ import annotations

import abc
from typing import Literal

Mode = Literal["latent", "explicit"]
CapAction = Literal["close", "force"]


class SwitchRule(abc.ABC):
    """Per-step mode decisions; subclasses say which mode a step wants.

    `max_switches` caps the latent->explicit switches (None: no cap). `switched` tells
    whether the last observed step changed the mode; `cap_action` what the cap asks of that step.
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
        self.cap_action: CapAction | None = None

    @property
    def forced(self) -> bool:
        """True once the cap has asked to force the answer: the rule takes no more steps."""
        return self.cap_action == "force"

    def observe(self, entropy: float, max_prob: float) -> Mode:
        """The mode for this step, and in `cap_action` what the cap asks of it (see the module docstring)."""
        if self.forced:
            raise RuntimeError("the rule forced the answer at its switch cap; thinking is over")
        wanted = self.wants(entropy, max_prob)
        self.switched = wanted != self.mode
        self.cap_action = None
        if self.switched:
            self.switches += 1
            self.commits += wanted == "explicit"
            self.mode = wanted
            self.steps_in_mode = 0
            self.on_switch(entropy)
            if self.max_switches is not None and wanted == "explicit" and self.commits >= self.max_switches:
                self.cap_action = "force" if self.commits > 2 * self.max_switches else "close"
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


class ColdStop:
    """Soft Thinking's Cold Stop: True once `steps` consecutive steps had entropy below `entropy`."""

    def __init__(self, entropy: float, steps: int):
        if entropy <= 0.0 or steps < 1:
            raise ValueError(f"Cold Stop needs an entropy above 0 and steps >= 1, got {entropy} and {steps}")
        self.entropy = entropy
        self.steps = steps
        self.run = 0

    def observe(self, entropy: float) -> bool:
        """Count this step; True when the run of confident steps reaches `steps`."""
        self.run = self.run + 1 if entropy < self.entropy else 0
        return self.run >= self.steps


class FixedMode(SwitchRule):
    """Never switch: every step in `mode`."""

    def __init__(self, mode: Mode):
        super().__init__(mode)

    def wants(self, entropy: float, max_prob: float) -> Mode:
        return self.mode
