"""Rich views of a `Solution` for the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from reasoner.solution import Solution
from reasoner.trace import trace_summary


def render_solution(solution: Solution, console: Console) -> None:
    """Answer, usage, metrics and a trace summary."""
    answer = solution.answer if solution.answer is not None else "[i]no answer found[/i]"
    console.print(Panel(f"[b]{answer}[/b]", title=f"answer ({solution.strategy}, {solution.model})", expand=False))
    console.print(Panel(solution.text.strip() or "[i]empty[/i]", title="response", expand=False))
    usage = Table(title="usage", show_header=False)
    usage.add_column("figure")
    usage.add_column("value", justify="right")
    figures = solution.usage.model_dump(exclude={"generated_by_phase"})
    figures["budget"] = solution.budget.tokens
    figures["latency_s"] = round(solution.latency_s, 2)
    for name, value in figures.items():
        usage.add_row(name, str(value))
    for phase, tokens in sorted(solution.usage.generated_by_phase.items()):
        usage.add_row(f"generated ({phase})", str(tokens))
    for name, value in sorted(solution.metrics.items()):
        usage.add_row(name, str(value))
    console.print(usage)
    summary = trace_summary(solution.trace)
    segments = ", ".join(
        f"{kind}: {count} ({summary['tokens'][kind]} tok)" for kind, count in summary["segments"].items()
    )
    edges = ", ".join(f"{kind}: {count}" for kind, count in summary["edges"].items()) or "none"
    console.print(f"trace: {segments or 'empty'}; edges: {edges}")
