"""From a `Solution` to OpenAI's response pieces: content, reasoning, usage and our account."""

from __future__ import annotations

import itertools

import networkx as nx

from reasoner import Solution, get_strategy
from reasoner.trace import trace_summary
from server.protocol import CompletionTokensDetails, FinishReason, PromptTokensDetails, ReasonerInfo, UsageInfo
from server.selection import is_operator_only


def cut_at_stops(text: str, stops: tuple[str, ...]) -> str:
    """`text` up to the first occurrence of any stop string."""
    cut = len(text)
    for stop in stops:
        found = text.find(stop)
        if found != -1:
            cut = min(cut, found)
    return text[:cut]


def finish_reason(solution: Solution) -> FinishReason:
    """'length' when the solve spent its whole budget, else 'stop'."""
    return "length" if solution.usage.generated_tokens >= solution.budget.tokens else "stop"


def reasoning_text(graph: nx.DiGraph) -> str | None:
    """The thinking behind the answer: the `think` segments on the path to the last answer segment.

    A solve that wrote no answer segment (its budget ended in the thinking) gives its thinking when
    that is one chain, as it streamed. None when the answer came from no thinking (direct) or from
    several chains none of which the trace marks as the answer's (the trace holds them all).
    """
    answers = [node for node, attrs in graph.nodes(data=True) if attrs.get("kind") == "answer"]
    if answers:
        last = max(answers, key=lambda node: (graph.nodes[node].get("finished_at") or 0.0, node))
        chain = sorted(node for node in nx.ancestors(graph, last) if graph.nodes[node].get("kind") == "think")
    else:
        chain = sorted(node for node, attrs in graph.nodes(data=True) if attrs.get("kind") == "think")
        if any(not nx.has_path(graph, earlier, later) for earlier, later in itertools.pairwise(chain)):
            return None
    text = "".join(str(graph.nodes[node].get("text", "")) for node in chain)
    return text or None


def usage_info(solutions: list[Solution]) -> UsageInfo:
    """OpenAI usage over solves: every request's prompt and generated tokens, thinking as reasoning."""
    prompt = sum(solution.usage.prompt_tokens for solution in solutions)
    completion = sum(solution.usage.generated_tokens for solution in solutions)
    return UsageInfo(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(
            cached_tokens=sum(solution.usage.cached_prompt_tokens for solution in solutions)
        ),
        completion_tokens_details=CompletionTokensDetails(
            reasoning_tokens=sum(solution.usage.generated_by_phase.get("thinking", 0) for solution in solutions)
        ),
    )


def reasoner_info(solution: Solution) -> ReasonerInfo:
    """The toolkit's account of one solve (budget, usage by phase, metrics, trace summary).

    Its options leave out the operator's (`--strategy-option`): a file or URL on the server's side
    is not the client's to see.
    """
    declared = get_strategy(solution.strategy).Options.model_fields
    return ReasonerInfo(
        strategy=solution.strategy,
        budget=solution.budget.model_dump(exclude_none=True),
        options={
            name: value for name, value in solution.options.items() if not is_operator_only(name, declared.get(name))
        },
        answer=solution.answer,
        latency_s=round(solution.latency_s, 4),
        requests=solution.usage.requests,
        aborted_tokens_saved=solution.usage.aborted_tokens_saved,
        usage_by_phase=dict(solution.usage.generated_by_phase),
        usage_by_model={name: each.generated_tokens for name, each in solution.usage.by_model.items()},
        cost=solution.usage.cost,
        metrics=dict(solution.metrics),
        trace=trace_summary(solution.trace),
    )
