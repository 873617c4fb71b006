"""Reading a model's input-embedding matrix straight from its local safetensors files.

Soft tokens (latent thinking) and step clustering need the matrix; an engine does not hand
it out, so any backend whose model is on this machine reads it here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reasoner.errors import CapabilityError
from reasoner.models import ResolvedModel

EMBEDDING_KEYS = ("embed_tokens.weight", "wte.weight", "word_embeddings.weight")


def read_input_embeddings(model: ResolvedModel) -> np.ndarray:
    """The `[vocab, hidden]` input-embedding matrix as float32 (blocking: call it in a thread)."""
    if model.local_dir is None:
        raise CapabilityError(f"input embeddings need a local model folder; {model.name!r} is not one")
    from safetensors import safe_open

    for shard in sorted(Path(model.local_dir).glob("*.safetensors")):
        with safe_open(str(shard), "pt") as weights:
            for key in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
                if key.endswith(EMBEDDING_KEYS):
                    return np.asarray(weights.get_tensor(key).float().numpy())
    raise CapabilityError(f"no input-embedding tensor found in {model.local_dir}")
