from __future__ import annotations

import numpy as np

from reasoner import Budget
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend
from strategies.step_clusters import cluster_identical, cluster_steps, cluster_vectors, cosine_distances
from strategies.step_embedders import InputEmbeddingEmbedder


def test_vectors_within_the_threshold_share_a_cluster_and_others_do_not() -> None:
    vectors = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0], [-1.0, 0.0]])
    assert cluster_vectors(vectors, threshold=0.05) == [0, 0, 1, 1, 2]


def test_a_threshold_above_every_distance_puts_all_steps_in_one_cluster() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert cluster_vectors(vectors, threshold=2.0) == [0, 0, 0]


def test_a_zero_vector_is_its_own_cluster() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    assert cosine_distances(vectors).tolist() == [1.0, 0.0, 1.0]
    assert cluster_vectors(vectors, threshold=0.5) == [0, 1, 0]


async def test_steps_are_clustered_by_the_policy_model_input_embeddings() -> None:
    backend = ScriptedBackend()
    await backend.start()
    tokenizer = backend.tokenizer()
    session = Session(backend, tokenizer, get_profile("smollm2"), Budget(tokens=10))
    steps = [tokenizer.encode("add the two numbers"), tokenizer.encode("add the two numbers"), tokenizer.encode("x")]
    texts = [tokenizer.decode(step) for step in steps]
    assert await cluster_steps(session, steps, texts, 0.01, InputEmbeddingEmbedder()) == [0, 0, 1]


async def test_without_embeddings_only_identical_steps_share_a_cluster() -> None:
    backend = ScriptedBackend(input_embeddings=False)
    session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=10))
    labels = await cluster_steps(session, [[1, 2], [1, 3], [1, 2]], ["a", "b", "a"], 2.0, InputEmbeddingEmbedder())
    assert labels == [0, 1, 0]
    assert cluster_identical([[5], [5], [6]]) == [0, 0, 1]


class TextEmbedder:
    """Embeds a step by a keyword in its text, whatever its tokens."""

    name = "keywords"

    async def embed(self, session: Session, token_ids: object, texts: list[str]) -> np.ndarray:
        return np.array([[1.0, 0.0] if "add" in text else [0.0, 1.0] for text in texts])


async def test_clusters_follow_the_embedder_not_the_token_ids() -> None:
    backend = ScriptedBackend()
    session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=10))
    labels = await cluster_steps(session, [[1], [1], [2]], ["add 2", "subtract", "add 3"], 0.2, TextEmbedder())
    assert labels == [0, 1, 0]
