"""`direct`: one pass, no thinking block, the answer extracted from the response.

The baseline every other strategy is measured against: the whole budget goes to a single
request, and the answer is whatever the profile's extraction finds in it.
"""

from __future__ import annotations

from pydantic import Field

from reasoner import Outcome, Session, Strategy, StrategyOptions, register_strategy


class DirectOptions(StrategyOptions):
    """Sampling for the single pass (greedy by default)."""

    temperature: float = Field(default=0.0, ge=0.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")


@register_strategy
class Direct(Strategy):
    """Answer in one request with the whole budget."""

    name = "direct"
    Options = DirectOptions
    options: DirectOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        text_prompt = session.profile.build_prompt(
            session.tokenizer, prompt, thinking=False, answer_format=session.answer_format
        )
        generation = await session.generate(
            text_prompt,
            max_tokens=session.remaining,
            phase="answer",
            kind="answer",
            temperature=self.options.temperature,
            top_p=self.options.top_p,
        )
        return Outcome(
            text=generation.text,
            answer=session.extract_answer(generation.text),
            metrics={"finish_reason": generation.finish_reason, "cut_by_budget": generation.cut_by_limit},
        )
