"""A small priced model shape for tests of cost caps on scripted models (eFLOPs by `reasoner.cost`)."""

from __future__ import annotations

from reasoner.cost import CostModel, ModelShape


def small_shape(layers: int) -> ModelShape:
    """A 256-wide transformer of `layers` layers (grouped-query attention, a 1000-token vocabulary)."""
    return ModelShape(
        layers=layers,
        hidden_size=256,
        attention_heads=4,
        kv_heads=2,
        head_dim=64,
        intermediate_size=512,
        vocab_size=1000,
    )


def priced(layers: int) -> CostModel:
    """The cost model of `small_shape(layers)` on the default accelerator."""
    return CostModel.from_config(small_shape(layers))
