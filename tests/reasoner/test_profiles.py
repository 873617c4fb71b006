from __future__ import annotations

import pytest

from reasoner.errors import ModelError
from reasoner.profiles import PROFILES, detect_profile, get_profile
from reasoner.testing import ScriptedTokenizer


@pytest.mark.parametrize(
    ("name", "model_type", "family"),
    [
        ("Qwen/Qwen3-1.7B", "qwen3", "qwen3"),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "qwen2", "deepseek_r1"),
        ("openai/gpt-oss-20b", "gpt_oss", "gpt_oss"),
        ("smollm2-135m-instruct", "llama", "smollm2"),
        ("meta-llama/Llama-3.2-1B-Instruct", "llama", "generic"),
    ],
)
def test_profile_detection(name: str, model_type: str, family: str) -> None:
    assert detect_profile(name, model_type).family == family


def test_unknown_profile_lists_known() -> None:
    with pytest.raises(ModelError, match="known: .*qwen3"):
        get_profile("nope")


@pytest.mark.parametrize("family", sorted(PROFILES))
def test_thinking_prompt_ends_inside_an_open_thinking_block(family: str) -> None:
    profile = PROFILES[family]
    prompt = profile.build_prompt(ScriptedTokenizer(), "What is 1+1?", thinking=True)
    assert prompt.rstrip().endswith(profile.think_open)


@pytest.mark.parametrize("family", sorted(PROFILES))
def test_forced_answer_closes_thinking_then_leads_in(family: str) -> None:
    profile = PROFILES[family]
    suffix = profile.forced_answer_suffix("let me think")
    assert profile.think_close in suffix
    assert suffix.endswith(profile.answer_lead_in)
    thinking, answer = profile.split_thinking(profile.think_open + "let me think" + suffix + " 2")
    assert "let me think" in thinking
    assert answer.endswith(" 2")


def test_qwen3_switches_thinking_through_the_template() -> None:
    tokenizer = ScriptedTokenizer()
    qwen3 = get_profile("qwen3")
    assert "enable_thinking=False" in qwen3.build_prompt(tokenizer, "q", thinking=False)
    assert "enable_thinking=True" in qwen3.build_prompt(tokenizer, "q", thinking=True)


def test_gpt_oss_effort_reaches_the_template() -> None:
    prompt = get_profile("gpt_oss").build_prompt(ScriptedTokenizer(), "q", thinking=True, effort="low")
    assert "reasoning_effort=low" in prompt


def test_answer_is_extracted_only_after_thinking() -> None:
    profile = get_profile("smollm2")
    assert profile.extract_answer("<think>maybe 3</think>\nFinal answer: 4") == "4"


def test_smollm2_thinks_after_a_plain_solution_lead_instead_of_a_think_tag() -> None:
    prompt = get_profile("smollm2").build_prompt(ScriptedTokenizer(), "What is 1+1?", thinking=True)
    assert prompt.endswith("Solution:\n")
    assert "<think>" not in prompt
