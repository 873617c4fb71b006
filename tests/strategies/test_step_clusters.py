from __future__ import annotations

import numpy as np

from reasoner import Budget
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend
from strategies.step_clusters import cluster_identical, cluster_steps, cluster_vectors, cosine_distances, mean_pooled


def test_mean_pooled_averages_the_rows_of_the_step_tokens() -> None:
    matrix = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])
    assert mean_pooled(matrix, [0, 2]).tolist() == [2.0, 1.5]


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
    assert await cluster_steps(session, steps, threshold=0.01) == [0, 0, 1]


async def test_without_embeddings_only_identical_steps_share_a_cluster() -> None:
    backend = ScriptedBackend(input_embeddings=False)
    session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=10))
    assert await cluster_steps(session, [[1, 2], [1, 3], [1, 2]], threshold=2.0) == [0, 1, 0]
    assert cluster_identical([[5], [5], [6]]) == [0, 0, 1]
