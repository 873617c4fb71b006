"""Model profiles: how a model family thinks and answers, in one place.

A profile owns the chat-template kwargs that switch thinking on or off, the thinking
delimiters, the lead-in that forces a final answer after truncated thinking, the
reasoning-effort control, the step delimiter and how answers are extracted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasoner.engines.base import Tokenizer
from reasoner.errors import ModelError
from reasoner.extract import extract_answer

PROMPTED_THINKING = (
    "You are a careful assistant. First think step by step between <think> and </think>. "
    "Then write 'Final answer:' followed by the answer alone."
)
PROMPTED_DIRECT = "You are a helpful assistant. End your reply with 'Final answer:' followed by the answer alone."
CODE_HINT = " For code, give the complete solution in one ```python fenced block."
# smollm2's thinking opens with a plain lead it continues with worked steps: on SmolLM2-135M
# (arith difficulty 1, 30 problems, elastic at 256 tokens) a `<think>` prefill under the
# think-tag system prompt makes it skip the working ("The answer is 6."), 0.10 vs direct 0.30;
# "Solution:" under the direct system prompt gets 0.33.
SOLUTION_OPEN = "Solution:"


@dataclass(frozen=True)
class ModelProfile:
    """How one model family is prompted to think, cut off, and made to answer."""

    family: str
    native_thinking: bool
    think_open: str = "<think>"
    think_close: str = "</think>"
    cutoff_note: str = ""
    answer_lead_in: str = "\n\nFinal answer:"
    direct_system: str | None = PROMPTED_DIRECT
    thinking_system: str | None = PROMPTED_THINKING
    thinking_kwargs: dict[str, Any] = field(default_factory=dict)
    no_thinking_kwargs: dict[str, Any] = field(default_factory=dict)
    no_thinking_prefill: str = ""
    effort_kwarg: str | None = None
    step_delimiter: str = "\n\n"
    min_answer_tokens: int = 4

    def build_prompt(
        self,
        tokenizer: Tokenizer,
        question: str,
        *,
        thinking: bool,
        effort: str | None = None,
        answer_format: str = "math",
    ) -> str:
        """The full prompt text; in thinking mode it ends inside an open thinking block."""
        system = self.thinking_system if thinking else self.direct_system
        if system is not None and answer_format == "code":
            system += CODE_HINT
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": question})
        kwargs = dict(self.thinking_kwargs if thinking else self.no_thinking_kwargs)
        if effort is not None and self.effort_kwarg is not None:
            kwargs[self.effort_kwarg] = effort
        prompt = tokenizer.chat_prompt(messages, **kwargs)
        if thinking and not prompt.rstrip().endswith(self.think_open):
            prompt += self.think_open + "\n"
        if not thinking and self.no_thinking_prefill:
            prompt += self.no_thinking_prefill
        return prompt

    def forced_answer_suffix(self, thinking_text: str) -> str:
        """What to append to cut-off thinking so the model answers next."""
        separator = "" if thinking_text.endswith("\n") else "\n"
        return separator + self.cutoff_note + self.think_close + self.answer_lead_in

    def split_thinking(self, text: str) -> tuple[str, str]:
        """(thinking, answer) parts of a response; no closing delimiter means all thinking."""
        body = text.split(self.think_open, 1)[1] if self.think_open in text else text
        if self.think_close not in body:
            return body, ""
        thinking, answer = body.split(self.think_close, 1)
        return thinking, answer

    def extract_answer(self, text: str, answer_format: str = "math") -> str | None:
        """The answer in `text`, looking only past the thinking block when there is one."""
        if self.think_close in text:
            text = text.rsplit(self.think_close, 1)[1]
        return extract_answer(text, answer_format)


PROFILES: dict[str, ModelProfile] = {
    "smollm2": ModelProfile(
        family="smollm2", native_thinking=False, think_open=SOLUTION_OPEN, thinking_system=PROMPTED_DIRECT
    ),
    "generic": ModelProfile(family="generic", native_thinking=False),
    "qwen3": ModelProfile(
        family="qwen3",
        native_thinking=True,
        cutoff_note="\nConsidering the limited time, I have to give the solution based on the thinking directly now.\n",
        answer_lead_in="\n\n",
        direct_system=None,
        thinking_system=None,
        thinking_kwargs={"enable_thinking": True},
        no_thinking_kwargs={"enable_thinking": False},
        min_answer_tokens=8,
    ),
    "deepseek_r1": ModelProfile(
        family="deepseek_r1",
        native_thinking=True,
        answer_lead_in="\n\n**Final Answer**\n",
        direct_system=None,
        thinking_system=None,
        no_thinking_prefill="<think>\n\n</think>\n\n",
        min_answer_tokens=8,
    ),
    "gpt_oss": ModelProfile(
        family="gpt_oss",
        native_thinking=True,
        think_open="<|channel|>analysis<|message|>",
        think_close="<|end|><|start|>assistant<|channel|>final<|message|>",
        answer_lead_in="",
        direct_system=None,
        thinking_system=None,
        thinking_kwargs={"reasoning_effort": "high"},
        no_thinking_kwargs={"reasoning_effort": "low"},
        effort_kwarg="reasoning_effort",
        min_answer_tokens=16,
    ),
}


def get_profile(name: str) -> ModelProfile:
    """The profile registered under `name`."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ModelError(f"unknown model profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None


def detect_profile(model_name: str, model_type: str | None) -> ModelProfile:
    """Pick a profile from the model's name and its config's `model_type`."""
    name = model_name.lower()
    if model_type in ("qwen3", "qwen3_moe") or "qwen3" in name:
        return PROFILES["qwen3"]
    if model_type == "gpt_oss" or "gpt-oss" in name:
        return PROFILES["gpt_oss"]
    if "deepseek-r1" in name or "r1-distill" in name:
        return PROFILES["deepseek_r1"]
    if "smollm" in name:
        return PROFILES["smollm2"]
    return PROFILES["generic"]
