"""Semantic clusters of reasoning steps, for ETS's coverage term.

Each step is embedded by a `StepEmbedder` (`strategies.step_embedders`: a sentence-embedding
model on a vLLM pooling engine or endpoint, or the policy model's mean-pooled input
embeddings as the fallback). Steps are grouped by average-linkage agglomerative clustering
on cosine distance, cut at a distance threshold: two steps share a cluster when their
embeddings are within the threshold of each other on average.

An embedder that cannot embed on this backend (`CapabilityError`: the fallback on a remote
server) leaves only identical steps sharing a cluster, so the search still runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reasoner import CapabilityError, Session
from strategies.step_embedders import StepEmbedder


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
    from scipy.cluster.hierarchy import fcluster, linkage  # 0.15 s to import: here, not at start-up

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


async def cluster_steps(
    session: Session,
    steps: Sequence[Sequence[int]],
    texts: Sequence[str],
    threshold: float,
    embedder: StepEmbedder,
) -> list[int]:
    """Cluster labels for steps given as token ids and text (see the module docstring)."""
    if not steps:
        return []
    try:
        vectors = await embedder.embed(session, steps, texts)
    except CapabilityError:
        return cluster_identical(steps)
    return cluster_vectors(np.asarray(vectors, dtype=np.float64), threshold)
