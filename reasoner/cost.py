"""One cost measure for requests of any model and context length, after Kinetics.

Kinetics (Sadhukhan et al. 2025, "Kinetics: Rethinking Test-Time Scaling Laws",
arXiv:2506.05333) prices inference as equivalent FLOPs: compute plus memory traffic, the
bytes weighted by the accelerator's arithmetic intensity `I` (FLOP per byte, the ridge of its
roofline, `reasoner.accelerators`), since the two bottlenecks do not overlap much in decoding:

    eFLOPs = C_comp + I * C_mem

For long generations and many samples the KV cache's traffic, not the parameter count,
dominates: a token of a small model at a long context can cost more than a token of a larger
one at a short context. One request with `P` prompt tokens, `C` of them served from the prefix
cache, and `G` generated tokens, on a model with `N` matrix-multiply parameters active per
token (every layer's projections and the LM head; the embedding lookup is no matmul), `L`
layers, `H` query heads of size `d`, `kv` bytes of KV cache per token (keys and values, every
layer and KV head) and `W` bytes of weights:

    C_comp = 2 N (P - C + G)                          linear layers: 2 FLOPs per weight per token
           + 4 L H d [T(P) - T(C) + G P + T(G)]       attention: QK^T and PV, 2 FLOPs per MAC each
    C_mem  = kv P                                     prefill: new tokens' KV written, cached prefix read once
           + kv [G P + T(G)]                          decode: each generated token reads the KV before it
           + W G / B                                  weights: read once per decode step, shared by a batch of B
    T(n)   = n (n + 1) / 2                            keys seen by n tokens that each attend to all before them

The linear and attention terms are the paper's per request (`2 P L_out`, and the query-key
pairs of `L_out` tokens over a context growing from `L_in`, priced as compute and as KV reads);
prefill and weight traffic are added here because a test-time strategy sends many short
requests (one-token self-evaluations, step expansions) where they are not negligible. The
paper drops the weights (its batches are large); `decode_batch` (B, default 64) is how many
sequences share one decode step's weight read. Left out, small beside the rest for a dense
model: biases, norms, rotary embeddings, the softmax, and activations' traffic. Sliding-window
layers and MLA caches are counted as full attention (an upper bound). A request's figure is
rounded up to a whole eFLOP, so sums over a solve are exact.

`CostModel.from_config` reads the model's Hugging Face `config.json` (layers, heads, KV heads,
head size, MLP and expert sizes, dtype); a `ModelShape` states them by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reasoner.accelerators import DEFAULT_ACCELERATOR, Accelerator, get_accelerator
from reasoner.errors import CostError

DEFAULT_DECODE_BATCH = 64
DTYPE_BYTES = {"bfloat16": 2.0, "float16": 2.0, "half": 2.0, "float32": 4.0, "float": 4.0, "float64": 8.0}
# Families whose MLP is one up and one down projection; the rest gate it (SwiGLU: three).
UNGATED_MLP_FAMILIES = frozenset({"gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "phi", "starcoder2"})


class ModelShape(BaseModel):
    """The figures of a decoder-only transformer that its inference cost depends on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layers: int = Field(gt=0, description="Decoder layers (num_hidden_layers).")
    hidden_size: int = Field(gt=0, description="Width of the residual stream.")
    attention_heads: int = Field(gt=0, description="Query heads per layer.")
    kv_heads: int = Field(gt=0, description="Key/value heads per layer (fewer than query heads under GQA).")
    head_dim: int = Field(gt=0, description="Size of one attention head.")
    intermediate_size: int = Field(gt=0, description="MLP width of a dense layer, or of one expert.")
    vocab_size: int = Field(gt=0, description="Rows of the embedding and of the LM head.")
    tied_embeddings: bool = Field(default=True, description="The LM head shares the embedding's weights.")
    gated_mlp: bool = Field(default=True, description="Gate, up and down projections (SwiGLU); else up and down.")
    experts: int = Field(default=1, gt=0, description="Routed experts per MLP (1: a dense model).")
    active_experts: int = Field(default=1, gt=0, description="Routed experts each token runs through.")
    shared_expert_size: int = Field(default=0, ge=0, description="MLP width of the experts every token runs.")
    weight_bytes: float = Field(default=2.0, gt=0, allow_inf_nan=False, description="Bytes per weight.")
    kv_bytes: float = Field(default=2.0, gt=0, allow_inf_nan=False, description="Bytes per KV-cache element.")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "shape"
            raise CostError(f"invalid model shape {field}={error.get('input')!r}: {error['msg']}") from None
        if self.active_experts > self.experts:
            raise CostError(f"active_experts {self.active_experts} is more than the {self.experts} experts")

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any]) -> ModelShape:
        """The shape in a Hugging Face `config.json` (a multimodal model's `text_config` when it has one)."""
        if not isinstance(config, Mapping):
            raise CostError(f"a model config must be a mapping of config.json's fields, got {type(config).__name__}")
        text = config.get("text_config")
        fields: dict[str, Any] = {**config, **text} if isinstance(text, Mapping) else dict(config)
        try:
            return cls._from_fields(fields)
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            if isinstance(exc, CostError):
                raise
            raise CostError(f"the model config's figures are not usable numbers ({exc}); pass a ModelShape") from None

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> ModelShape:
        hidden = _first(fields, "hidden_size", "n_embd", "d_model")
        heads = _first(fields, "num_attention_heads", "n_head")
        layers = _first(fields, "num_hidden_layers", "n_layer", "num_layers")
        vocab = _first(fields, "vocab_size")
        single_kv = 1 if fields.get("multi_query") else heads
        kv_heads = _first(fields, "num_key_value_heads", "num_kv_heads", default=single_kv)
        head_dim = _first(fields, "head_dim", default=hidden // heads)
        experts = _first(fields, "num_experts", "num_local_experts", "n_routed_experts", default=1) or 1
        dense_size = _first(fields, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
        expert_size = _first(fields, "moe_intermediate_size", default=dense_size) if experts > 1 else dense_size
        shared_size = _first(fields, "shared_expert_intermediate_size", default=0)
        if not shared_size and fields.get("n_shared_experts"):
            shared_size = int(fields["n_shared_experts"]) * expert_size
        dtype = str(_first(fields, "torch_dtype", "dtype", default="bfloat16")).removeprefix("torch.")
        weight_bytes = DTYPE_BYTES.get(dtype, 1.0 if dtype.startswith("float8") else 2.0)
        return cls(
            layers=layers,
            hidden_size=hidden,
            attention_heads=heads,
            kv_heads=kv_heads,
            head_dim=head_dim,
            intermediate_size=expert_size,
            vocab_size=vocab,
            tied_embeddings=bool(fields.get("tie_word_embeddings", True)),
            gated_mlp=fields.get("model_type") not in UNGATED_MLP_FAMILIES,
            experts=experts,
            active_experts=_first(fields, "num_experts_per_tok", "experts_per_token", "moe_topk", default=1)
            if experts > 1
            else 1,
            shared_expert_size=shared_size,
            weight_bytes=weight_bytes,
            kv_bytes=weight_bytes,
        )

    @classmethod
    def from_folder(cls, folder: str | Path) -> ModelShape:
        """The shape in `folder/config.json` (a Hugging Face model folder)."""
        path = Path(folder) / "config.json"
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CostError(f"cannot read the model config {path}: {exc}; pass a ModelShape instead") from None
        return cls.from_hf_config(config)

    def _layer_parameters(self, experts: int) -> int:
        attention = self.hidden_size * self.head_dim * 2 * (self.attention_heads + self.kv_heads)
        projections = 3 if self.gated_mlp else 2
        mlp = projections * self.hidden_size * (experts * self.intermediate_size + self.shared_expert_size)
        router = self.hidden_size * self.experts if self.experts > 1 else 0
        return attention + mlp + router

    @property
    def parameters(self) -> int:
        """Every weight of the model: layers, embedding, and the LM head when it is not tied."""
        embedding = self.vocab_size * self.hidden_size
        return self.layers * self._layer_parameters(self.experts) + embedding * (1 if self.tied_embeddings else 2)

    @property
    def matmul_parameters(self) -> int:
        """Weights a decode step reads: every layer's (all experts) and the LM head."""
        return self.layers * self._layer_parameters(self.experts) + self.vocab_size * self.hidden_size

    @property
    def active_parameters(self) -> int:
        """Weights one token multiplies by: its layers (its experts only) and the LM head."""
        return self.layers * self._layer_parameters(self.active_experts) + self.vocab_size * self.hidden_size

    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes one token holds: a key and a value per layer and KV head."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.kv_bytes


@dataclass(frozen=True)
class RequestCost:
    """One request's compute (FLOPs), memory traffic (bytes) and their sum in eFLOPs."""

    flops: int
    memory_bytes: float
    eflops: int


@dataclass(frozen=True)
class CostModel:
    """Prices requests of one model on one accelerator in eFLOPs (see the module docstring)."""

    shape: ModelShape
    accelerator: Accelerator
    decode_batch: int = DEFAULT_DECODE_BATCH
    name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.decode_batch, bool) or not isinstance(self.decode_batch, int) or self.decode_batch < 1:
            raise CostError(f"decode_batch must be a positive whole number of sequences, got {self.decode_batch!r}")

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | str | Path | ModelShape,
        accelerator: str | Accelerator = DEFAULT_ACCELERATOR,
        *,
        decode_batch: int = DEFAULT_DECODE_BATCH,
        name: str = "",
    ) -> CostModel:
        """A cost model from a `ModelShape`, a config.json mapping, or a model folder."""
        if isinstance(config, ModelShape):
            shape = config
        elif isinstance(config, Mapping):
            shape = ModelShape.from_hf_config(config)
        else:
            shape = ModelShape.from_folder(config)
        return cls(shape, get_accelerator(accelerator), decode_batch, name)

    def request(self, prompt_tokens: int, cached_prompt_tokens: int, generated_tokens: int) -> RequestCost:
        """The cost of one request: `prompt_tokens` (`cached_prompt_tokens` of them from the prefix cache)."""
        prompt, generated = max(0, prompt_tokens), max(0, generated_tokens)
        cached = min(max(0, cached_prompt_tokens), prompt)
        shape = self.shape
        attended = _keys(prompt) - _keys(cached) + generated * prompt + _keys(generated)
        flops = 2 * shape.active_parameters * (prompt - cached + generated)
        flops += 4 * shape.layers * shape.attention_heads * shape.head_dim * attended
        kv_read = prompt + generated * prompt + _keys(generated)
        weights = shape.matmul_parameters * shape.weight_bytes * generated / self.decode_batch
        memory = shape.kv_bytes_per_token * kv_read + weights
        return RequestCost(flops, memory, flops + math.ceil(self.accelerator.intensity * memory))

    def eflops(self, prompt_tokens: int, cached_prompt_tokens: int, generated_tokens: int) -> int:
        """`request(...).eflops`."""
        return self.request(prompt_tokens, cached_prompt_tokens, generated_tokens).eflops

    def max_generated(self, prompt_tokens: int, allowance: int, most: int) -> int:
        """The most tokens (up to `most`) a request may generate, prompt uncached, within `allowance` eFLOPs."""
        if self.eflops(prompt_tokens, 0, 0) > allowance:
            return 0
        low, high = 0, max(0, most)
        while low < high:
            middle = (low + high + 1) // 2
            if self.eflops(prompt_tokens, 0, middle) <= allowance:
                low = middle
            else:
                high = middle - 1
        return low


def _keys(tokens: int) -> int:
    """Keys attended by `tokens` tokens that each see every token up to themselves: T(n)."""
    return tokens * (tokens + 1) // 2


def _first(fields: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        value = fields.get(name)
        if value is not None:
            return value
    if default is None:
        raise CostError(f"the model config has no {' or '.join(names)}; pass a ModelShape with the model's figures")
    return default
