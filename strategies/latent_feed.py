"""What each step of `latent_switch` feeds back into its prompt of input-embedding rows.

The prompt is one growing `PrefixEmbeds` (prompt tokens, soft tokens, sampled tokens), sent as
prompt embeddings. A latent step appends the soft token (`soft_tokens.soft_embedding`), or, under
SwiReasoning with `explicit_math`, the row of a token that spells math as that token, so a mixture
never blurs a number; an explicit step appends the sampled token's row. At a SwiReasoning switch the
row is mixed with the thinking delimiters' embeddings, as the reference implementation does: the
first explicit token after a latent block with the close-thinking embedding (`close_mix`), the first
soft token after an explicit block with the open-thinking one (`open_mix`), both weights decaying
linearly to 0 over the thinking budget. A delimiter of several tokens (the prompted `</think>` of a
model not trained to think) has no embedding of its own: with `multi_token_mix` it is mixed token by
token into the first rows after the switch; without it only a one-token delimiter is mixed.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from reasoner import Session
from strategies.latent_options import LatentSwitchOptions
from strategies.soft_tokens import PrefixEmbeds, StepDistribution, math_token_ids, soft_embedding
from strategies.switch_rules import Mode

StepKind = Literal["latent", "math", "explicit"]


def mix_in(row: np.ndarray, delimiter: np.ndarray, weight: float) -> np.ndarray:
    """`(1 - weight) * row + weight * delimiter`, as float32; `row` unchanged at weight 0."""
    if weight <= 0.0:
        return np.asarray(row, dtype=np.float32)
    return ((1.0 - weight) * np.asarray(row, dtype=np.float64) + weight * delimiter).astype(np.float32)


class EmbeddingFeed:
    """One solve's prompt of embedding rows and the row each step appends to it."""

    def __init__(self, session: Session, options: LatentSwitchOptions, embeddings: np.ndarray, prefix: PrefixEmbeds):
        self.session = session
        self.embeddings = embeddings
        self.prefix = prefix
        self.top_p = options.top_p
        swireasoning = options.rule == "swireasoning"
        explicit_math = swireasoning and options.explicit_math
        self.math_ids = math_token_ids(session.tokenizer) if explicit_math else frozenset()
        self.close_mix = options.close_mix if swireasoning else 0.0
        self.open_mix = options.open_mix if swireasoning else 0.0
        self.close_rows = self._delimiter_rows(session.profile.think_close)
        self.open_rows = self._delimiter_rows(session.profile.think_open)
        if not options.multi_token_mix:
            self.close_mix = self.close_mix if len(self.close_rows) == 1 else 0.0
            self.open_mix = self.open_mix if len(self.open_rows) == 1 else 0.0
        self._pending_rows: list[np.ndarray] = []
        self._pending_mix = 0.0

    @property
    def delimiter_mix(self) -> bool:
        """Whether switches mix a delimiter embedding in (see the module docstring)."""
        return (self.close_mix > 0 and len(self.close_rows) > 0) or (self.open_mix > 0 and len(self.open_rows) > 0)

    def _delimiter_rows(self, delimiter: str) -> np.ndarray:
        """The input embeddings of a thinking delimiter's tokens, `[tokens, hidden]` float64."""
        return np.asarray(self.embeddings[self.session.encode(delimiter)], dtype=np.float64)

    def append_text(self, text: str) -> None:
        """Append the rows of `text`'s tokens (an injected delimiter, an answer suffix)."""
        self.prefix.append(self.embeddings[self.session.encode(text)])

    def step_row(self, mode: Mode, token: int, distribution: StepDistribution) -> tuple[np.ndarray, int, StepKind]:
        """The unmixed row a step in `mode` feeds back, the token it stands for, and what kind of step it is."""
        if mode == "latent" and token in self.math_ids:
            return self.embeddings[token], token, "math"
        if mode == "latent":
            return soft_embedding(self.embeddings, distribution, self.top_p), distribution.token_ids[0], "latent"
        return self.embeddings[token], token, "explicit"

    def switched_to(self, mode: Mode) -> None:
        """The rule just switched into `mode`: the next rows take that side's delimiter, token by token."""
        mix = self.open_mix if mode == "latent" else self.close_mix
        rows = self.open_rows if mode == "latent" else self.close_rows
        self._pending_rows = list(rows) if mix > 0 else []
        self._pending_mix = mix

    def append(self, row: np.ndarray, decay: float) -> None:
        """Append a step's row, mixed with the next pending delimiter row at its weight times `decay`."""
        if self._pending_rows:
            row = mix_in(row, self._pending_rows.pop(0), self._pending_mix * decay)
        self.prefix.append(row)
