"""Soft tokens for latent thinking (Soft Thinking; SwiReasoning's latent blocks).

A soft token is the probability-weighted mixture of the input embeddings of the top-k
next tokens, top-p renormalised, so several continuations stay superposed in one input
position. This module turns one step's top-k logprobs into that mixture and into the
step's confidence figures (entropy, max probability), and keeps the growing prompt as
one float32 array whose rows never change, so equal prefixes are equal bytes and the
engine's prefix cache serves them.

Deviation, kept because the engine returns at most `max_logprobs` entries a step: SwiReasoning's
reference mixes the whole distribution (`probs @ E`) and takes its entropy over the whole
vocabulary; here both come from the top-k read (the mixture renormalised over it, the mass outside
it dropped) and the entropy counts the unread tail as one outcome, so it is a lower bound on the
true entropy (`StepDistribution.entropy`; `tail_mass` says how loose).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reasoner.engines.base import Tokenizer


@dataclass(frozen=True)
class StepDistribution:
    """The top-k of one next-token distribution, most likely first.

    `probs` are the model's probabilities (not renormalised); what the top-k leaves out is
    `tail_mass`.
    """

    token_ids: tuple[int, ...]
    probs: tuple[float, ...]

    @property
    def max_prob(self) -> float:
        """Probability of the most likely token: the step's confidence."""
        return self.probs[0]

    @property
    def tail_mass(self) -> float:
        """Probability outside the top-k."""
        return max(0.0, 1.0 - sum(self.probs))

    @property
    def entropy(self) -> float:
        """Next-token entropy in nats, the tail counted as one outcome (a lower bound on the true entropy)."""
        terms = [p * math.log(p) for p in self.probs if p > 0.0]
        tail = self.tail_mass
        if tail > 0.0:
            terms.append(tail * math.log(tail))
        return max(0.0, -sum(terms))


def top_k_distribution(logprobs: dict[int, float], top_k: int) -> StepDistribution:
    """The `top_k` most likely tokens of one step's logprobs (token id -> log-probability).

    The engine reports the top-k plus the sampled token, so a step can carry k+1 entries;
    only the k most likely are kept. Ties keep the lower token id first.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if not logprobs:
        raise ValueError("the step has no logprobs; request logprobs=top_k")
    ranked = sorted(logprobs.items(), key=lambda item: (-item[1], item[0]))[:top_k]
    return StepDistribution(
        token_ids=tuple(token for token, _ in ranked),
        probs=tuple(math.exp(logprob) for _, logprob in ranked),
    )


def mixture_weights(probs: Sequence[float], top_p: float) -> np.ndarray:
    """Weights of the soft token: `probs` renormalised, cut to the smallest head holding `top_p`, renormalised again.

    `probs` must be sorted most likely first; the most likely token is always kept.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    weights = np.asarray(probs, dtype=np.float64)
    total = weights.sum()
    if weights.size == 0 or total <= 0.0:
        raise ValueError("a soft token needs at least one token with positive probability")
    weights = weights / total
    kept = int(np.searchsorted(np.cumsum(weights), top_p - 1e-12) + 1)
    weights = weights[: min(kept, weights.size)]
    return weights / weights.sum()


def soft_embedding(embeddings: np.ndarray, distribution: StepDistribution, top_p: float) -> np.ndarray:
    """The soft token of one step: sum_i w_i * embeddings[token_i], as float32 `[hidden]`."""
    weights = mixture_weights(distribution.probs, top_p)
    rows = embeddings[list(distribution.token_ids[: weights.size])].astype(np.float64)
    return (weights @ rows).astype(np.float32)


class PrefixEmbeds:
    """A prompt of input embeddings that only grows: rows are appended, never rewritten.

    `view()` is the prompt so far, `[length, hidden]` float32. Two views that share a head
    share its bytes, which is what the engine's prefix cache keys embedding prompts on.
    """

    def __init__(self, hidden_size: int, capacity: int = 256):
        self._rows = np.zeros((max(capacity, 1), hidden_size), dtype=np.float32)
        self._length = 0

    def __len__(self) -> int:
        return self._length

    @property
    def hidden_size(self) -> int:
        return int(self._rows.shape[1])

    def append(self, rows: np.ndarray) -> None:
        """Append one row `[hidden]` or several `[n, hidden]`."""
        block = np.atleast_2d(np.asarray(rows, dtype=np.float32))
        if block.shape[1] != self.hidden_size:
            raise ValueError(f"rows have hidden size {block.shape[1]}, the prefix has {self.hidden_size}")
        needed = self._length + block.shape[0]
        if needed > self._rows.shape[0]:
            grown = np.zeros((max(needed, 2 * self._rows.shape[0]), self.hidden_size), dtype=np.float32)
            grown[: self._length] = self._rows[: self._length]
            self._rows = grown
        self._rows[self._length : needed] = block
        self._length = needed

    def view(self) -> np.ndarray:
        """The prompt so far, as a view: later appends write past it, so it never changes."""
        return self._rows[: self._length]


_LATEX_COMMANDS = (
    "frac", "dfrac", "sqrt", "cdot", "times", "div", "pm", "leq", "geq", "neq", "approx", "equiv", "in", "notin",
    "cup", "cap", "sum", "prod", "int", "lim", "log", "ln", "exp", "sin", "cos", "tan", "pi", "theta", "alpha",
    "beta", "gamma", "delta", "lambda", "mu", "infty", "boxed", "left", "right", "binom", "text",
)  # fmt: skip
MATH_SYMBOLS: tuple[str, ...] = (
    *"0123456789",
    *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    *"+-*/^=<>()[]{}|_",
    *(f"\\{command}" for command in _LATEX_COMMANDS),
)


def math_token_ids(tokenizer: Tokenizer) -> frozenset[int]:
    """Ids of the tokens that spell math: digits, single letters, operators and common LaTeX commands.

    Each symbol is encoded bare and after a space. A piece of those encodings counts when it is the
    whole symbol, one character, or holds a non-letter (`\\`, `\\fr`); a multi-letter fragment
    of a command (`ac` of `\\frac`) does not, since the same ids spell ordinary words. SwiReasoning's
    reference feeds these steps as the sampled token even in a latent block, so a soft mixture
    never blurs a number or an operator.
    """
    ids: set[int] = set()
    for symbol in MATH_SYMBOLS:
        for text in (symbol, f" {symbol}"):
            for token in tokenizer.encode(text):
                piece = tokenizer.decode([token]).strip()
                if piece == symbol or len(piece) == 1 or (piece and not piece.isalpha()):
                    ids.add(token)
    return frozenset(ids)
