from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reasoner.testing import ScriptedBackend
from strategies.soft_tokens import (
    PrefixEmbeds,
    StepDistribution,
    math_token_ids,
    mixture_weights,
    soft_embedding,
    top_k_distribution,
)

probabilities = st.lists(st.floats(min_value=1e-4, max_value=1.0), min_size=1, max_size=12)


def test_top_k_keeps_the_k_most_likely_tokens_most_likely_first() -> None:
    logprobs = {7: math.log(0.1), 3: math.log(0.5), 9: math.log(0.3), 4: math.log(0.05)}
    distribution = top_k_distribution(logprobs, 3)
    assert distribution.token_ids == (3, 9, 7)
    assert distribution.probs == pytest.approx((0.5, 0.3, 0.1))


def test_top_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="top_k"):
        top_k_distribution({1: 0.0}, 0)


def test_max_prob_is_the_most_likely_tokens_probability() -> None:
    assert StepDistribution((2, 5), (0.7, 0.2)).max_prob == pytest.approx(0.7)


def test_entropy_of_a_uniform_top_k_without_tail_is_log_k() -> None:
    assert StepDistribution((1, 2, 3, 4), (0.25,) * 4).entropy == pytest.approx(math.log(4))


def test_entropy_counts_the_mass_outside_the_top_k_as_one_outcome() -> None:
    distribution = StepDistribution((1,), (0.5,))
    assert distribution.tail_mass == pytest.approx(0.5)
    assert distribution.entropy == pytest.approx(math.log(2))


def test_a_certain_step_has_zero_entropy() -> None:
    assert StepDistribution((1,), (1.0,)).entropy == 0.0


def test_weights_with_top_p_one_are_the_renormalised_top_k() -> None:
    assert mixture_weights([0.4, 0.2, 0.2], 1.0) == pytest.approx([0.5, 0.25, 0.25])


def test_top_p_keeps_the_smallest_head_holding_that_mass() -> None:
    assert mixture_weights([0.5, 0.3, 0.15, 0.05], 0.8) == pytest.approx([0.625, 0.375])


def test_top_p_always_keeps_the_most_likely_token() -> None:
    assert mixture_weights([0.9, 0.1], 0.01) == pytest.approx([1.0])


@given(probabilities, st.floats(min_value=0.01, max_value=1.0))
def test_weights_are_a_distribution_over_a_head_of_the_top_k(probs: list[float], top_p: float) -> None:
    ordered = sorted(probs, reverse=True)
    weights = mixture_weights(ordered, top_p)
    assert 1 <= weights.size <= len(ordered)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(weights > 0)
    assert np.all(np.diff(weights) <= 1e-12)


def test_the_soft_token_is_the_probability_weighted_mixture_of_embedding_rows() -> None:
    embeddings = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    distribution = StepDistribution((4, 1, 2), (0.5, 0.3, 0.2))
    expected = 0.5 * embeddings[4] + 0.3 * embeddings[1] + 0.2 * embeddings[2]
    soft = soft_embedding(embeddings, distribution, top_p=1.0)
    assert soft.dtype == np.float32
    np.testing.assert_allclose(soft, expected, rtol=1e-6)


def test_a_one_token_soft_token_is_that_tokens_embedding() -> None:
    embeddings = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    soft = soft_embedding(embeddings, StepDistribution((3,), (0.4,)), top_p=0.9)
    np.testing.assert_array_equal(soft, embeddings[3])


def test_an_earlier_prefix_keeps_its_bytes_after_appends_and_growth() -> None:
    prefix = PrefixEmbeds(hidden_size=3, capacity=2)
    prefix.append(np.ones((2, 3)))
    before = prefix.view().copy()
    earlier_view = prefix.view()
    prefix.append(np.full(3, 2.0))
    prefix.append(np.full((4, 3), 3.0))
    assert len(prefix) == 7
    assert prefix.view()[:2].tobytes() == before.tobytes()
    assert earlier_view.tobytes() == before.tobytes()


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="hidden size"):
        PrefixEmbeds(hidden_size=3).append(np.zeros(4))


def test_math_token_ids_hold_digits_operators_and_latex_but_not_words() -> None:
    tokenizer = ScriptedBackend().tokenizer()
    ids = math_token_ids(tokenizer)
    assert {tokenizer.encode(text)[0] for text in ("7", " 7", "+", " x", "\\frac")} <= ids
    assert not {tokenizer.encode(text)[0] for text in (" the", "answer", " so")} & ids


class _PieceTokenizer:
    """Splits LaTeX commands into pieces the way subword tokenizers do: `\\cdot` -> `\\`, `c`, `dot`."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def encode(self, text: str) -> list[int]:
        parts = ["\\", text[1], text[2:]] if text.startswith("\\") and len(text) > 2 else [text]
        for part in parts:
            if part not in self.pieces:
                self.pieces.append(part)
        return [self.pieces.index(part) for part in parts]

    def decode(self, token_ids: list[int]) -> str:
        return "".join(self.pieces[token] for token in token_ids)


def test_math_token_ids_leave_out_word_fragments_of_latex_commands() -> None:
    tokenizer = _PieceTokenizer()
    ids = math_token_ids(tokenizer)  # type: ignore[arg-type]
    kept = {tokenizer.pieces[token] for token in ids}
    assert {"\\", "c", "7", "+"} <= kept
    assert not {"dot", "frac"[1:], "imes"} & kept
