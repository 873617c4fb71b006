"""The cost model against hand-computed figures for published configs, and its arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reasoner.accelerators import Accelerator, accelerator_names, get_accelerator, register_accelerator
from reasoner.budget import Budget
from reasoner.cost import CostModel, ModelShape
from reasoner.errors import BudgetError, CostError

# config.json of Qwen/Qwen2.5-0.5B on the Hugging Face hub (model card: 0.49B parameters, 0.36B non-embedding).
QWEN25_05B = {
    "model_type": "qwen2",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}
# config.json of meta-llama/Llama-3.1-8B (model card: 8.03B parameters).
LLAMA31_8B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
# config.json of Qwen/Qwen3-30B-A3B (model card: 30.5B parameters, 3.3B activated).
QWEN3_30B_A3B = {
    "model_type": "qwen3_moe",
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 48,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
# config.json of Qwen/Qwen3-0.6B.
QWEN3_06B = {
    "model_type": "qwen3",
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}
H200_INTENSITY = 790e12 / 4.3e12  # FLOP per byte


@pytest.mark.parametrize(
    ("config", "published"),
    [(QWEN25_05B, 0.49e9), (LLAMA31_8B, 8.03e9), (QWEN3_30B_A3B, 30.5e9)],
    ids=["qwen2.5-0.5b", "llama-3.1-8b", "qwen3-30b-a3b"],
)
def test_parameters_from_the_config_match_the_published_count(config: dict[str, object], published: float) -> None:
    assert ModelShape.from_hf_config(config).parameters == pytest.approx(published, rel=0.01)


def test_an_moe_model_multiplies_by_its_active_experts_only() -> None:
    shape = ModelShape.from_hf_config(QWEN3_30B_A3B)
    embedding = 151936 * 2048
    assert shape.active_parameters + embedding == pytest.approx(3.3e9, rel=0.02)
    assert shape.matmul_parameters == shape.parameters - embedding


def test_qwen25_05b_request_matches_the_hand_computed_figure() -> None:
    # P = 1000 prompt tokens, C = 200 of them cached, G = 500 generated; H200, B = 64.
    # N = 24 x (attention 896*64*2*(14+2) = 1,835,008 + MLP 3*896*4864 = 13,074,432) + LM head 151936*896
    #   = 493,961,216 (tied: the LM head is the embedding).
    # compute = 2 N (800 + 500) + 4*24*14*64 x (T(1000) - T(200) + 500*1000 + T(500) = 1,105,650)
    #         = 1,284,299,161,600 + 95,103,590,400 = 1,379,402,752,000
    # KV/token = 2*24*2*64*2 = 12,288 B; KV read = 1000 + 500*1000 + T(500) = 626,250 tokens = 7,695,360,000 B
    # weights = 493,961,216 * 2 B * 500 / 64 = 7,718,144,000 B
    # eFLOPs = 1,379,402,752,000 + 183.7209 x 15,413,504,000 = 4.2112e12
    cost = CostModel.from_config(QWEN25_05B, "H200").request(1000, 200, 500)
    assert cost.flops == pytest.approx(1_379_402_752_000, rel=0.01)
    assert cost.memory_bytes == pytest.approx(15_413_504_000, rel=0.01)
    assert cost.eflops == pytest.approx(4.2112e12, rel=0.01)


def test_llama31_8b_request_matches_the_hand_computed_figure() -> None:
    # Same request. N = 32 x (4096*128*2*(32+8) = 41,943,040 + 3*4096*14336 = 176,160,768) + 128256*4096
    #   = 7,504,658,432 (the untied embedding is no matmul).
    # compute = 2 N x 1300 + 4*32*32*128 x 1,105,650 = 19,512,111,923,200 + 579,679,027,200 = 20,091,790,950,400
    # KV/token = 2*32*8*128*2 = 131,072 B; x 626,250 = 82,083,840,000 B; weights = N * 2 * 500 / 64 = 117,260,288,000 B
    # eFLOPs = 2.00918e13 + 183.7209 x 199,344,128,000 = 5.67155e13
    cost = CostModel.from_config(LLAMA31_8B, "H200").request(1000, 200, 500)
    assert cost.flops == pytest.approx(20_091_790_950_400, rel=0.01)
    assert cost.memory_bytes == pytest.approx(199_344_128_000, rel=0.01)
    assert cost.eflops == pytest.approx(5.67155e13, rel=0.01)


def test_a_small_model_at_long_context_costs_more_per_token_than_a_large_one_at_short() -> None:
    """Kinetics' point: KV traffic, not parameters, dominates long generations."""
    small, large = CostModel.from_config(QWEN3_06B), CostModel.from_config(LLAMA31_8B)
    small_token = small.eflops(30_000, 30_000, 1) - small.eflops(30_000, 30_000, 0)
    large_token = large.eflops(1_000, 1_000, 1) - large.eflops(1_000, 1_000, 0)
    assert small_token > large_token


def test_the_intensity_folds_memory_into_compute() -> None:
    shape = ModelShape.from_hf_config(QWEN25_05B)
    on_h200, on_cpu = CostModel(shape, get_accelerator("H200")), CostModel(shape, get_accelerator("cpu"))
    h200, cpu = on_h200.request(100, 0, 100), on_cpu.request(100, 0, 100)
    assert h200.flops == cpu.flops and h200.memory_bytes == cpu.memory_bytes
    assert h200.eflops == h200.flops + math.ceil(H200_INTENSITY * h200.memory_bytes)
    assert cpu.eflops == cpu.flops + math.ceil(10.0 * cpu.memory_bytes)


@given(
    prompt=st.integers(1, 4000),
    cached=st.integers(0, 4000),
    generated=st.integers(0, 4000),
)
def test_cost_rises_with_generated_tokens_and_falls_with_cache_hits(prompt: int, cached: int, generated: int) -> None:
    model = CostModel.from_config(QWEN25_05B)
    cached = min(cached, prompt)
    assert model.eflops(prompt, cached, generated + 1) > model.eflops(prompt, cached, generated)
    assert model.eflops(prompt, cached, generated) <= model.eflops(prompt, 0, generated)


@given(prompt=st.integers(1, 3000), allowance=st.integers(0, 10**13), most=st.integers(0, 5000))
def test_max_generated_is_the_most_the_allowance_pays(prompt: int, allowance: int, most: int) -> None:
    model = CostModel.from_config(QWEN25_05B)
    granted = model.max_generated(prompt, allowance, most)
    assert 0 <= granted <= most
    if granted:
        assert model.eflops(prompt, 0, granted) <= allowance
    if granted < most:
        assert model.eflops(prompt, 0, granted + 1) > allowance


def test_an_accelerator_can_be_registered_and_found_by_name() -> None:
    register_accelerator(Accelerator(name="test-chip", matmul_flops=100e12, memory_bandwidth=1e12))
    assert "test-chip" in accelerator_names()
    assert CostModel.from_config(QWEN25_05B, "TEST-CHIP").accelerator.intensity == pytest.approx(100.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: get_accelerator("tpu-v9"),
        lambda: Accelerator(name="x", matmul_flops=-1.0, memory_bandwidth=1.0),
        lambda: Accelerator(name="x", matmul_flops=1.0, memory_bandwidth=0.0),
        lambda: ModelShape.from_hf_config({k: v for k, v in QWEN25_05B.items() if k != "num_hidden_layers"}),
        lambda: ModelShape.from_hf_config({**QWEN25_05B, "hidden_size": "wide"}),
        lambda: ModelShape.from_hf_config({**QWEN25_05B, "num_key_value_heads": 0}),
        lambda: ModelShape.from_hf_config([1, 2]),  # type: ignore[arg-type]
        lambda: ModelShape.from_folder("/nonexistent-model-folder"),
        lambda: CostModel.from_config(QWEN25_05B, decode_batch=0),
    ],
    ids=[
        "unknown-accelerator",
        "negative-flops",
        "zero-bandwidth",
        "missing-layers",
        "text-width",
        "zero-kv-heads",
        "not-a-mapping",
        "no-folder",
        "zero-batch",
    ],
)
def test_unusable_cost_inputs_are_cost_errors(make: object) -> None:
    with pytest.raises(CostError):
        make()  # type: ignore[operator]


@pytest.mark.parametrize("cost", [0, -1.0, float("nan"), float("inf"), True, "1e12"])
def test_a_cost_budget_must_be_a_positive_number(cost: object) -> None:
    with pytest.raises(BudgetError, match="cost"):
        Budget(tokens=10, cost=cost)
