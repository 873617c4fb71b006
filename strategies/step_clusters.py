"""Semantic clusters of reasoning steps, for ETS's coverage term.

A step's embedding is the policy model's own input-token embeddings, mean-pooled over the
step's token ids (no second model to load). Steps are grouped by average-linkage
agglomerative clustering on cosine distance, cut at a distance threshold: two steps share a
cluster when their embeddings are within the threshold of each other on average.

A backend that cannot hand out its embedding matrix (a remote server) falls back to
grouping identical steps only, so the search still runs, with less coverage signal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from reasoner import Session


def mean_pooled(embedding_matrix: np.ndarray, token_ids: Sequence[int]) -> np.ndarray:
    """The mean of the embedding rows of `token_ids` (ids outside the matrix are skipped)."""
    rows = [token for token in token_ids if 0 <= token < embedding_matrix.shape[0]]
    if not rows:
        return np.zeros(embedding_matrix.shape[1], dtype=np.float64)
    return np.asarray(embedding_matrix[rows].astype(np.float64).mean(axis=0))


def cosine_distances(vectors: np.ndarray) -> np.ndarray:
    """Condensed pairwise cosine distances (scipy's layout); a zero vector is at distance 1 from all."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    distances = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    zero = norms[:, 0] == 0
    distances[zero, :] = 1.0
    distances[:, zero] = 1.0
    upper = np.triu_indices(len(vectors), k=1)
    return np.asarray(distances[upper])


def cluster_vectors(vectors: np.ndarray, threshold: float) -> list[int]:
    """Cluster labels (0-based, in order of first appearance) at a cosine-distance threshold."""
    if len(vectors) == 0:
        return []
    if len(vectors) == 1:
        return [0]
    raw = fcluster(linkage(cosine_distances(vectors), method="average"), t=threshold, criterion="distance")
    relabel: dict[int, int] = {}
    return [relabel.setdefault(int(label), len(relabel)) for label in raw]


def cluster_identical(steps: Sequence[Sequence[int]]) -> list[int]:
    """Cluster labels that group only steps with identical token ids."""
    relabel: dict[tuple[int, ...], int] = {}
    return [relabel.setdefault(tuple(step), len(relabel)) for step in steps]


async def cluster_steps(session: Session, steps: Sequence[Sequence[int]], threshold: float) -> list[int]:
    """Cluster labels for steps given as token ids (see the module docstring)."""
    if not session.backend.capabilities.input_embeddings:
        return cluster_identical(steps)
    matrix = await session.backend.input_embeddings()
    vectors = np.stack([mean_pooled(matrix, step) for step in steps]) if steps else np.zeros((0, 1))
    return cluster_vectors(vectors, threshold)
