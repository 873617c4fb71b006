"""`graph_of_thoughts`: Adaptive Graph of Thoughts, a DAG of sub-problems that expands only complex nodes.

AGoT (Pandey et al., 2025): the question is decomposed into steps, the nodes of a graph; each
node is checked for complexity and either answered directly or, when complex and the depth
allows, expanded into a nested graph whose synthesis is its answer. Training-free; the graph's
shape (chain, tree or DAG) follows the problem.

How a graph runs (after the reference `multi_agent_llm.agents.adaptive_graph_of_thoughts`): a
decomposition request lists at most `max_nodes` steps per layer (`strategies.graph_steps`); a step
that uses a step of the same list goes one layer later, so a chain can be planned at once. Layers
run in order; the nodes of one layer do not depend on each other and run concurrently on the
engine. When the planned layers are done and `max_layers` allows, a follow-up decomposition shows
the results so far and asks for further steps or DONE. A nested graph at depth d has
`max_layers - d` layers, at least 1 (the reference's layer-depth reduction). A final node
synthesises the graph's answer from its nodes' results. A decomposition with no step in it
(malformed, or a weak model's nonsense) means the node, or the question, is answered directly.

Budget: every graph holds `synthesis_tokens` back first (the top graph's synthesis then gets all
that is left). Another layer starts only while the graph's share pays for a decomposition plus one
node; a layer keeps the nodes its share pays for; a node is checked for complexity only when its
share would pay for a nested graph. The ledger caps every request, so the budget always holds.

Trace: the graph is the trace. A node is the trace segment of the request that gave its result
(role `answer`, or `synthesise` for an expanded node) with its `question`, `answer` (the result its
dependents read), `depth`, `layer`, `step` (its label in its graph) and `expanded`; each dependency
is a `depends` edge between nodes, and a graph's nodes `join` its synthesis. Decompositions (role
`decompose`, kind `step`) `spawn` the nodes they propose; a complexity check (role `check`, kind
`eval`, with `complex`) leads to the node's answer, or `expand`s into its nested graph.

Metrics:
- `nodes`: nodes that ran (answered or expanded); `expanded_nodes`; `nodes_dropped`: steps read
  but not answered (over a bound, over the budget, or a step they use has no result).
- `depth_reached`: deepest graph that ran nodes (0: the top graph only); `layers`: layers run,
  all graphs together; `concurrent_width`: most requests in flight at once.
- `tokens_decompose`, `tokens_check`, `tokens_answer`, `tokens_synthesise`: generated tokens by role.
- `decompositions_malformed`: decompositions with neither a step nor DONE.
- `stopped_by`: why the top graph stopped: `done`, `layers`, `budget` or `malformed`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from pydantic import Field, ValidationInfo, field_validator

from reasoner import BudgetExhausted, Generation, Outcome, Session, Strategy, StrategyOptions, register_strategy
from reasoner.solution import MetricValue
from strategies.graph_steps import (
    CHECK,
    DECOMPOSE_FIRST,
    DECOMPOSE_NEXT,
    SOLVE_STEP,
    SYNTHESISE,
    Allowance,
    Decomposition,
    GraphNode,
    ThoughtGraph,
    numbered,
    parse_decomposition,
    problem_text,
    read_complex,
)

ROLES = ("decompose", "check", "answer", "synthesise")


class GraphOfThoughtsOptions(StrategyOptions):
    """The paper's bounds (depth, layers, nodes per layer) and each request's token cap."""

    max_depth: int = Field(
        default=1, ge=0, le=4, description="Deepest nested graph; 0: one graph, no node is checked or expanded."
    )
    max_layers: int = Field(default=2, ge=1, le=8, description="Layers of the top graph; depth d has max_layers - d.")
    max_nodes: int = Field(default=3, ge=1, le=8, description="Nodes per layer; further steps are dropped.")
    decompose_tokens: int = Field(default=96, ge=8, description="Most tokens of one decomposition.")
    answer_tokens: int = Field(default=96, ge=1, description="Most tokens of one node's direct answer.")
    check_tokens: int = Field(
        default=4, ge=1, description="Most tokens of one complexity check (needs max_depth >= 1)."
    )
    synthesis_tokens: int = Field(
        default=128, ge=1, description="Tokens each graph holds back for its synthesis (the top one gets what is left)."
    )
    result_tokens: int = Field(default=48, ge=1, description="Most tokens of a node's result that later prompts show.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature of every request.")

    @field_validator("check_tokens")
    @classmethod
    def _checks_need_depth(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("max_depth") == 0:
            raise ValueError("does not apply with max_depth=0 (no node is checked); drop it or raise max_depth")
        return value


@dataclass
class _Counts:
    nodes: int = 0
    expanded_nodes: int = 0
    nodes_dropped: int = 0
    depth_reached: int = 0
    layers: int = 0
    in_flight: int = 0
    concurrent_width: int = 0
    decompositions_malformed: int = 0
    tokens: Counter[str] = field(default_factory=Counter)


@register_strategy
class GraphOfThoughts(Strategy):
    """AGoT: recursive decomposition into a DAG of steps, expanding only complex ones."""

    name = "graph_of_thoughts"
    Options = GraphOfThoughtsOptions
    options: GraphOfThoughtsOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        run = _Run(session, self.options, prompt)
        top = ThoughtGraph(prompt, [], 0, self.options.max_layers, Allowance(session.remaining))
        await run.solve_graph(top, parent=None)
        final = await run.synthesise(top, final=True, question=prompt, depth=0, layer=top.layers_run)
        text = final.text if final is not None else ""
        answer = session.extract_answer(text)
        if final is not None:
            session.trace.update(final.node, answer=answer)
        counts = run.counts
        metrics: dict[str, MetricValue] = {
            "nodes": counts.nodes,
            "expanded_nodes": counts.expanded_nodes,
            "nodes_dropped": counts.nodes_dropped,
            "depth_reached": counts.depth_reached,
            "layers": counts.layers,
            "concurrent_width": counts.concurrent_width,
            **{f"tokens_{role}": counts.tokens[role] for role in ROLES},
            "decompositions_malformed": counts.decompositions_malformed,
            "stopped_by": top.stopped_by,
        }
        return Outcome(text=text, answer=answer, metrics=metrics)


class _Run:
    """One solve's graphs: requests, the layer loop, nodes and their nested graphs."""

    def __init__(self, session: Session, options: GraphOfThoughtsOptions, root: str):
        self.session = session
        self.options = options
        self.root = root
        self.counts = _Counts()

    def node_cost(self, depth: int) -> int:
        """Tokens one node at `depth` needs at least: its answer, and its check when it may expand."""
        check = self.options.check_tokens if depth < self.options.max_depth else 0
        return self.options.answer_tokens + check

    def graph_cost(self, depth: int) -> int:
        """Tokens a graph at `depth` needs at least: a decomposition, one node and its synthesis."""
        return self.options.decompose_tokens + self.node_cost(depth) + self.options.synthesis_tokens

    async def request(
        self,
        allowance: Allowance,
        message: str,
        cap: int,
        role: str,
        kind: str,
        *,
        parent: int | None,
        edge: str,
        attrs: dict[str, object],
        final: bool = False,
    ) -> Generation | None:
        """One request of at most `cap` tokens of `allowance` whose trace segment gets `attrs`.

        None when the budget refuses it.
        """
        cap = cap if final else min(cap, allowance.left)
        if cap < 1:
            return None
        session = self.session
        text = session.profile.build_prompt(
            session.tokenizer, message, thinking=False, answer_format=session.answer_format
        )
        self.counts.in_flight += 1
        self.counts.concurrent_width = max(self.counts.concurrent_width, self.counts.in_flight)
        try:
            generation = await session.generate(
                text,
                max_tokens=cap,
                phase="answer" if final else "thinking",
                kind=kind,
                temperature=self.options.temperature,
                final=final,
                parent=parent,
                edge=edge,
                role=role,
                **attrs,
            )
        except BudgetExhausted:
            return None
        finally:
            self.counts.in_flight -= 1
        allowance.spent += len(generation.token_ids)
        self.counts.tokens[role] += len(generation.token_ids)
        return generation

    async def solve_graph(self, graph: ThoughtGraph, parent: int | None) -> None:
        """Decompose `graph` and run its layers while its allowance pays, its synthesis held back."""
        reserve = min(self.options.synthesis_tokens, graph.allowance.left)
        node_cost = self.node_cost(graph.depth)
        planned: list[list[GraphNode]] = []
        layer = 0
        with self.session.ledger.hold(reserve):
            while layer < graph.max_layers:
                room = graph.allowance.left - reserve
                if not planned:
                    if room < self.options.decompose_tokens + node_cost:
                        graph.stopped_by = "budget"
                        break
                    decomposition = await self.decompose(graph, layer, parent)
                    if decomposition is None or not decomposition.steps:
                        graph.stopped_by = _why_no_steps(decomposition)
                        break
                    planned = graph.place(decomposition, layer, self.options.max_nodes)
                nodes = graph.ready(planned.pop(0))
                affordable = room // node_cost
                graph.drop(nodes[affordable:])
                if nodes and not affordable:
                    graph.stopped_by = "budget"
                    break
                if nodes := nodes[:affordable]:
                    share = max(node_cost, room // (len(nodes) + sum(len(later) for later in planned)))
                    await asyncio.gather(*(self.solve_node(graph, node, Allowance(share)) for node in nodes))
                    graph.layers_run += 1
                    self.counts.layers += 1
                layer += 1
            for later in planned:
                graph.drop(later)
        unanswered = sum(node.result is None for node in graph.nodes.values())
        self.counts.nodes_dropped += len(graph.dropped) + unanswered

    async def decompose(self, graph: ThoughtGraph, layer: int, parent: int | None) -> Decomposition | None:
        """Ask for the graph's next steps; None when the budget refuses the request."""
        first_label = graph.next_label()
        problem = problem_text(graph.question, self.root, graph.inputs)
        max_steps = self.options.max_nodes
        if layer == 0:
            message = DECOMPOSE_FIRST.format(max_steps=max_steps, problem=problem)
        else:
            solved = numbered([(node.label, node.question, node.result or "") for node in graph.answered()])
            message = DECOMPOSE_NEXT.format(
                problem=problem, solved=solved, max_steps=max_steps, first_label=first_label
            )
        edge = "expand" if layer == 0 and graph.depth > 0 else "continue"
        source = parent if layer == 0 else graph.last_decompose
        generation = await self.request(
            graph.allowance,
            message,
            self.options.decompose_tokens,
            "decompose",
            "step",
            parent=source,
            edge=edge,
            attrs={"depth": graph.depth, "layer": layer},
        )
        if generation is None:
            return None
        graph.last_decompose = generation.node
        decomposition = parse_decomposition(
            generation.text, first_label=first_label, problem=graph.question, cut=generation.cut_by_limit
        )
        self.counts.decompositions_malformed += decomposition.malformed
        self.session.trace.update(
            generation.node, steps=len(decomposition.steps), done=decomposition.done, malformed=decomposition.malformed
        )
        return decomposition

    async def solve_node(self, graph: ThoughtGraph, node: GraphNode, allowance: Allowance) -> None:
        """Answer `node` directly, or expand it into a nested graph when the check says it is complex."""
        inputs = [(graph.nodes[label].question, graph.nodes[label].result or "") for label in node.uses]
        problem = problem_text(graph.question, self.root, [*graph.inputs, *inputs])
        attrs = {"question": node.question, "depth": graph.depth, "layer": node.layer, "step": node.label}
        lead, edge = node.proposed_by, "spawn"
        may_expand = graph.depth < self.options.max_depth
        try:
            if may_expand and allowance.left >= self.node_cost(graph.depth) + self.graph_cost(graph.depth + 1):
                check = await self.request(
                    allowance, CHECK.format(problem=problem, step=node.question), self.options.check_tokens,
                    "check", "eval", parent=lead, edge=edge, attrs=attrs,
                )  # fmt: skip
                if check is not None:
                    lead, edge = check.node, "continue"
                    complex_step = read_complex(check.text)
                    self.session.trace.update(check.node, complex=complex_step)
                    if complex_step and await self.expand(graph, node, inputs, allowance, check.node, attrs):
                        return
            message = SOLVE_STEP.format(problem=problem, step=node.question)
            answer = await self.request(
                allowance, message, self.options.answer_tokens, "answer", "answer", parent=lead, edge=edge, attrs=attrs
            )
            self.settle(graph, node, answer, expanded=False)
        finally:
            graph.allowance.spent += allowance.spent

    async def expand(
        self,
        graph: ThoughtGraph,
        node: GraphNode,
        inputs: list[tuple[str, str]],
        allowance: Allowance,
        check: int,
        attrs: dict[str, object],
    ) -> bool:
        """Solve `node` as a nested graph; False when that graph ran no node (answer it directly then)."""
        depth = graph.depth + 1
        nested = ThoughtGraph(
            node.question, [*graph.inputs, *inputs], depth, max(1, self.options.max_layers - depth), allowance
        )
        await self.solve_graph(nested, parent=check)
        if not nested.answered():
            return False
        self.counts.depth_reached = max(self.counts.depth_reached, depth)
        synthesis = await self.synthesise(nested, final=False, **attrs)
        self.settle(graph, node, synthesis, expanded=True)
        return True

    def settle(self, graph: ThoughtGraph, node: GraphNode, generation: Generation | None, expanded: bool) -> None:
        """Record `node`'s result on its trace segment and link the nodes it used."""
        if generation is None:
            return
        node.trace_node, node.result = generation.node, self.result(generation)
        trace = self.session.trace
        trace.update(generation.node, answer=node.result, expanded=expanded)
        for label in node.uses:
            used = graph.nodes[label].trace_node
            if used is not None:
                trace.link(used, generation.node, "depends")
        self.counts.nodes += 1
        self.counts.expanded_nodes += expanded

    async def synthesise(self, graph: ThoughtGraph, final: bool, **attrs: object) -> Generation | None:
        """The graph's final node: its answer from its nodes' results (a direct answer when it has none)."""
        answered = graph.answered()
        problem = problem_text(graph.question, self.root, graph.inputs)
        results = numbered([(node.label, node.question, node.result or "") for node in answered])
        message = SYNTHESISE.format(problem=problem, results=results) if answered else problem
        cap = self.session.remaining if final else self.options.synthesis_tokens
        generation = await self.request(
            graph.allowance, message, max(cap, 1), "synthesise", "answer", final=final,
            parent=graph.last_decompose, edge="continue", attrs={**attrs, "expanded": bool(answered)},
        )  # fmt: skip
        if generation is not None:
            for node in answered:
                if node.trace_node is not None:
                    self.session.trace.link(node.trace_node, generation.node, "join")
        return generation

    def result(self, generation: Generation) -> str:
        """What later prompts show of a node: its extracted answer, else its last paragraph, capped."""
        session = self.session
        answer = session.extract_answer(generation.text)
        paragraphs = [part for part in generation.text.strip().split("\n\n") if part.strip()]
        text = " ".join((answer if answer is not None else paragraphs[-1] if paragraphs else "(no result)").split())
        ids = session.encode(text)
        if len(ids) > self.options.result_tokens:
            text = session.tokenizer.decode(ids[: self.options.result_tokens]).strip() + " ..."
        return text


def _why_no_steps(decomposition: Decomposition | None) -> str:
    if decomposition is None:
        return "budget"
    return "malformed" if decomposition.malformed else "done"
