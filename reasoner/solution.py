"""`Solution` and `Usage`: what a solve returns, JSON-serialisable."""

from __future__ import annotations

from typing import Annotated, Any

import networkx as nx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from reasoner.budget import Budget
from reasoner.ledger import Ledger
from reasoner.trace import trace_from_json, trace_to_json


def _graph_from_any(value: Any) -> nx.DiGraph:
    if isinstance(value, nx.DiGraph):
        return value
    if isinstance(value, dict):
        return trace_from_json(value)
    raise TypeError(f"trace must be a networkx DiGraph or node-link JSON, got {type(value).__name__}")


TraceGraph = Annotated[
    nx.DiGraph,
    BeforeValidator(_graph_from_any),
    PlainSerializer(trace_to_json, return_type=dict),
]

MetricValue = float | int | str | bool | None


class ModelUsage(BaseModel):
    """What one model of a solve spent (`Usage.by_model`); the models' figures add up to the solve's."""

    generated_tokens: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    requests: int = 0
    cost: int | None = Field(default=None, description="eFLOPs of this model's requests; None when unpriced.")


class Usage(BaseModel):
    """Everything one solve spent, over all of its requests."""

    generated_tokens: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    requests: int = 0
    aborted_tokens_saved: int = Field(
        default=0, description="Tokens that aborted requests were granted but never generated."
    )
    generated_by_phase: dict[str, int] = Field(
        default_factory=dict, description="Generated tokens per phase: thinking, answer, evaluation, estimation..."
    )
    cost: int | None = Field(
        default=None,
        description="eFLOPs of every request (compute plus memory traffic, `reasoner.cost`); None when unpriced.",
    )
    by_model: dict[str, ModelUsage] = Field(
        default_factory=dict, description="The same figures per model the solve's requests ran on, by model name."
    )

    @classmethod
    def from_ledger(cls, ledger: Ledger) -> Usage:
        return cls(
            generated_tokens=ledger.generated_tokens,
            prompt_tokens=ledger.prompt_tokens,
            cached_prompt_tokens=ledger.cached_prompt_tokens,
            requests=ledger.requests,
            aborted_tokens_saved=ledger.aborted_tokens_saved,
            generated_by_phase=dict(ledger.generated_by_phase),
            cost=ledger.cost if ledger.priced else None,
            by_model={
                name: ModelUsage(
                    generated_tokens=counts.generated_tokens,
                    prompt_tokens=counts.prompt_tokens,
                    cached_prompt_tokens=counts.cached_prompt_tokens,
                    requests=counts.requests,
                    cost=counts.cost if ledger.priced else None,
                )
                for name, counts in ledger.by_model.items()
            },
        )


class Solution(BaseModel):
    """The result of one solve."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    answer: str | None = Field(description="The extracted final answer, or None when none was found.")
    text: str = Field(description="The final response text (thinking excluded where the strategy separates it).")
    strategy: str
    model: str = ""
    budget: Budget
    usage: Usage
    latency_s: float
    trace: TraceGraph = Field(default_factory=nx.DiGraph)
    metrics: dict[str, MetricValue] = Field(
        default_factory=dict, description="The strategy's own figures, documented per strategy."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="The strategy options the solve ran with.")

    def trace_html(self) -> str:
        """The trace as one self-contained HTML page (`reasoner trace`): the segment graph, the chosen
        path highlighted, each segment's text on click, and the solve's totals on top."""
        from reasoner.trace_view import trace_page

        usage = {name: value for name, value in self.usage.model_dump().items() if not isinstance(value, dict)}
        totals: dict[str, Any] = {"answer": self.answer, "strategy": self.strategy, "model": self.model}
        totals |= {"budget": self.budget.tokens, "segments": self.trace.number_of_nodes(), **usage}
        totals["latency_s"] = round(self.latency_s, 3)
        return trace_page(self.trace, f"{self.strategy} ({self.model or 'model not named'})", totals, self.model)
