"""The steps of a thought graph (`graph_of_thoughts`): the prompts that ask for them, the parser,
and the graph that places them in layers.

A decomposition is a numbered list, one step per line; a step that needs earlier results ends with
"(uses 1, 2)". The parser reads what it can and never raises, because a small model writes
anything: lines that are not steps are skipped, a line cut by the token cap is dropped, a step that
repeats another or the problem itself is dropped, and references to steps that do not come before
are dropped. Steps are labelled by their position among the list's lines, from `first_label`, so
"(uses 2)" means the second step whatever number the model wrote. "DONE" on a line of its own says
the graph needs no more steps. A text with neither a step nor DONE is malformed.

`ThoughtGraph.place` puts a decomposition's steps in layers: a step goes one layer after the
latest step of the same list it uses; a step past the graph's layers, past a layer's node bound,
or using a dropped step is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_STEP_LINE = re.compile(r"^\s*(?:(?:step\s*)?\d{1,3}\s*[.):]|[-*\u2022])\s*(?P<text>.*\S)\s*$", re.IGNORECASE)
_USES = re.compile(r"[(\[]\s*(?:uses?|needs?|using|from|after|depends\s+on)\b(?P<refs>[^)\]]*)[)\]]", re.IGNORECASE)
_NUMBER = re.compile(r"\d{1,6}")  # int() refuses digit runs past 4300
_DONE = re.compile(r"^\W*done\W*$", re.IGNORECASE)
_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_NOT_WORD = re.compile(r"\W+")

DECOMPOSE_FIRST = (
    "Break the problem below into at most {max_steps} smaller steps. Write one step per line, numbered "
    "1., 2., and so on. When a step needs the result of an earlier step, end its line with (uses 1) or "
    "(uses 1, 2). Write only the steps; do not solve them.\n\n{problem}"
)
DECOMPOSE_NEXT = (
    "{problem}\n\nSteps solved so far:\n{solved}\n\nIf these results are enough to answer the problem, write "
    "DONE. Otherwise write at most {max_steps} further steps, one per line, numbered from {first_label}., each "
    "ending with (uses ...) naming the steps whose results it needs. Do not solve them."
)
CHECK = (
    "{problem}\n\nStep: {step}\n\nCan this step be solved directly, in one or two simple operations? Answer Yes or No."
)
SOLVE_STEP = "{problem}\n\nSolve only this step and state its result: {step}"
SYNTHESISE = (
    "{problem}\n\nResults of the steps worked out for it:\n{results}\n\nUse these results to answer the problem."
)


@dataclass(frozen=True)
class PlannedStep:
    """One step of a decomposition: its label, its question and the labels of the steps it uses."""

    label: int
    question: str
    uses: tuple[int, ...]


@dataclass(frozen=True)
class Decomposition:
    """What a decomposition request said: the steps read from it, and whether it said DONE."""

    steps: tuple[PlannedStep, ...]
    done: bool = False

    @property
    def malformed(self) -> bool:
        """Neither a step nor DONE could be read."""
        return not self.steps and not self.done


@dataclass
class Allowance:
    """Tokens a graph or a node may spend (its nested graphs included), and what it spent."""

    tokens: int
    spent: int = 0

    @property
    def left(self) -> int:
        return self.tokens - self.spent


@dataclass
class GraphNode:
    """A placed step: its layer, the decomposition that proposed it, and once run its trace node and result."""

    label: int
    question: str
    uses: tuple[int, ...]
    layer: int
    proposed_by: int
    trace_node: int | None = None
    result: str | None = None


@dataclass
class ThoughtGraph:
    """One graph: its question, the results it starts from, its bounds, nodes, and what it may spend."""

    question: str
    inputs: list[tuple[str, str]]
    depth: int
    max_layers: int
    allowance: Allowance
    nodes: dict[int, GraphNode] = field(default_factory=dict)
    dropped: set[int] = field(default_factory=set)
    last_decompose: int | None = None
    layers_run: int = 0
    stopped_by: str = "layers"

    def answered(self) -> list[GraphNode]:
        """Nodes with a result, by label."""
        return sorted((node for node in self.nodes.values() if node.result is not None), key=lambda node: node.label)

    def next_label(self) -> int:
        return max([*self.nodes, *self.dropped], default=0) + 1

    def place(self, decomposition: Decomposition, first_layer: int, max_nodes: int) -> list[list[GraphNode]]:
        """Add the steps as nodes in layers from `first_layer`; return those layers in order."""
        assert self.last_decompose is not None, "steps are placed after the decomposition that proposed them"
        layers: dict[int, list[GraphNode]] = {}
        for step in decomposition.steps:
            uses = tuple(label for label in step.uses if label in self.nodes or label in self.dropped)
            layer = max([first_layer, *(self.nodes[label].layer + 1 for label in uses if label in self.nodes)])
            lost = any(label in self.dropped for label in uses)
            if lost or layer >= self.max_layers or len(layers.get(layer, [])) >= max_nodes:
                self.dropped.add(step.label)
                continue
            node = GraphNode(step.label, step.question, uses, layer, self.last_decompose)
            self.nodes[step.label] = node
            layers.setdefault(layer, []).append(node)
        return [layers[layer] for layer in sorted(layers)]

    def ready(self, nodes: list[GraphNode]) -> list[GraphNode]:
        """The nodes whose every used step has a result; the others are dropped."""
        ready = [node for node in nodes if all(self._has_result(label) for label in node.uses)]
        self.drop([node for node in nodes if node not in ready])
        return ready

    def drop(self, nodes: list[GraphNode]) -> None:
        """Take planned nodes out of the graph (steps that use them are dropped in turn)."""
        for node in nodes:
            del self.nodes[node.label]
            self.dropped.add(node.label)

    def _has_result(self, label: int) -> bool:
        node = self.nodes.get(label)
        return node is not None and node.result is not None


def parse_decomposition(text: str, *, first_label: int, problem: str, cut: bool) -> Decomposition:
    """Read the steps of `text`; `cut` says the request stopped at its token cap (its last line may be partial)."""
    lines = text.splitlines()
    if cut and lines:
        lines.pop()
    if any(_DONE.match(line) for line in lines):
        return Decomposition(steps=(), done=True)
    seen = {_normal(problem)}
    steps: list[PlannedStep] = []
    label = first_label
    for line in lines:
        match = _STEP_LINE.match(line)
        if match is None:
            continue
        body = match["text"]
        uses = sorted({int(ref) for found in _USES.finditer(body) for ref in _NUMBER.findall(found["refs"])})
        question = " ".join(_USES.sub(" ", body).split()).strip(" .;:,")
        if _normal(question) and _normal(question) not in seen:
            seen.add(_normal(question))
            steps.append(PlannedStep(label, question, tuple(ref for ref in uses if 1 <= ref < label)))
        label += 1
    return Decomposition(steps=tuple(steps))


def read_complex(text: str) -> bool:
    """The complexity check's verdict: "No" (not solvable directly) means complex; no verdict means simple."""
    verdict = _VERDICT.search(text)
    return verdict is not None and verdict[1].lower() == "no"


def problem_text(question: str, root: str, inputs: Sequence[tuple[str, str]]) -> str:
    """A graph's problem as its prompts show it: the question, the larger problem it is part of, known results."""
    parts = [question]
    if question != root:
        parts.append(f"(This is one step of a larger problem: {root})")
    if inputs:
        parts.append("Known results:\n" + "\n".join(f"- {step}: {result}" for step, result in inputs))
    return "\n\n".join(parts)


def numbered(results: Sequence[tuple[int, str, str]]) -> str:
    """Steps as `label. question -> result` lines."""
    return "\n".join(f"{label}. {question} -> {result}" for label, question, result in results)


def _normal(text: str) -> str:
    return _NOT_WORD.sub(" ", text.lower()).strip()
