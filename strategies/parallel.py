"""`parallel`: the model spawns child threads that reason concurrently, then joins their results.

Adaptive Parallel Reasoning (Pan et al., 2025): a parent thread may call spawn(); each child is
its own request with a token cap carved from the parent's, all children run at once; join()
brings back only each child's result, and the parent continues to a final answer.

Training-free: the prompt teaches the syntax of `strategies.spawn_syntax` (a `<spawn>` block of
`- task` lines; APR's own `spawn("task a", "task b")` is read by the same parser).

`context="isolated"` (the default, as in APR): a child starts from its own task only, the
system prompt and its spawn message (the task, and "end with `Result:` and what you found"),
and the join returns only the message the child wrote for its parent, as APR's children do
with `join(msg)`: the paragraph after its last `Result:` marker, or the message of an APR
`join("...")` call (`strategies.spawn_syntax.parse_result`); a child that wrote neither is
joined by its extracted answer, else its last paragraph. At most `result_tokens` tokens of it
come back, so the parent's context holds its own text plus short results.
`context="shared"`: a child's prompt is the parent's ids plus the spawn message as a new user
turn (the engine reuses the parent's cached KV) and the join returns the child's whole reply
(`result_tokens` does not apply there and is refused).
The parent continues its own turn from ``\n<join>\n- <task>: <result>\n...</join>\n``. A spawn
block that does not parse falls back to serial reasoning: the parent continues from the text
before it.
Children may spawn too while their depth is below `max_depth`. With `spawn="always"` the
response opens a spawn block (a task list of at most `max_fanout` lines) that the strategy
closes at `</spawn>`, a blank line or the end of the turn.

Metrics:
- `spawns`: spawn blocks run (children started from them), nested ones included.
- `children`: child threads that ran; `children_cut`: those stopped by their token cap;
  `results_written`: those (isolated) whose join is the message they wrote (`Result:` or
  `join(...)`), the others fell back to their answer or last paragraph;
  `children_refused`: those the budget (deadline) refused to start.
- `tasks_dropped`: tasks beyond `max_fanout`, not run.
- `spawn_parse_failures`: spawn blocks that did not parse (serial fallback).
- `spawns_over_budget`: spawn blocks with no tokens left for children (serial fallback).
- `depth_reached`: the deepest child level that ran (0: no child).
- `children_overlap_s`: seconds all children of the parent's spawn were generating at once.
- `parent_context_tokens`: the top thread's context at its end (prompt, its own tokens and the
  joined results); `child_context_tokens_max`: the longest context any child had.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from reasoner import BudgetExhausted, Generation, Outcome, Session, Strategy, StrategyOptions, register_strategy
from reasoner.solution import MetricValue
from reasoner.strategy import AppliesWhen
from strategies.scoring import follow_up_turn
from strategies.spawn_syntax import RESULT_MARKER, SPAWN_CLOSE, SPAWN_OPEN, SpawnBlock, parse_result, parse_spawn

__all__ = ["SPAWN_CLOSE", "SPAWN_OPEN", "Parallel", "ParallelOptions", "SpawnBlock", "parse_spawn"]

SPAWN_HINT = (
    "If the problem splits into independent parts, you may hand them to helpers: write <spawn>, then one "
    "line per part starting with '- ', then </spawn>. The helpers' results come back between <join> and "
    "</join>; then finish your solution. Otherwise solve it directly."
)
CHILD_REQUEST = (
    f"Work on this part only: {{task}}\nEnd with a line that starts with {RESULT_MARKER!r} and gives what you found."
)
TASK_LINE_TOKENS = 32


class ParallelOptions(StrategyOptions):
    """Limits of the spawn tree and how the budget is carved."""

    max_fanout: int = Field(default=4, ge=1, description="Most children one spawn starts; further tasks are dropped.")
    max_depth: int = Field(default=1, ge=1, description="Deepest child level; 1 means children do not spawn.")
    child_tokens: int | None = Field(
        default=None, ge=1, description="Most tokens per child; default: an even share of what is left."
    )
    answer_tokens: int = Field(
        default=64, ge=1, description="Tokens a thread keeps back for continuing after the join."
    )
    spawn: Literal["auto", "always"] = Field(
        default="auto",
        description="auto: the model decides; always: the response opens a spawn block, which ends at "
        "</spawn>, a blank line or the end of the turn.",
    )
    children: Literal["concurrent", "serial"] = Field(
        default="concurrent", description="Run children at once (APR) or one after another (for comparison)."
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature of every thread.")
    context: Literal["isolated", "shared"] = Field(
        default="isolated",
        description="isolated (APR): a child starts from the system prompt and its spawn message, and the join "
        "returns only its result; shared: a child continues the parent's context (its cached prefix) and the "
        "join returns its whole reply.",
    )
    result_tokens: Annotated[int, AppliesWhen("context", ("isolated",))] = Field(
        default=48, ge=1, description="isolated: most tokens of one child's result in the join."
    )


@dataclass
class _Thread:
    """What one thread (parent or child) produced, descendants included."""

    text: str
    last_node: int | None
    tokens: int = 0
    cut: bool = False
    first: Generation | None = None
    context_tokens: int = 0


@dataclass
class _Counts:
    spawns: int = 0
    children: int = 0
    children_cut: int = 0
    results_written: int = 0
    children_refused: int = 0
    tasks_dropped: int = 0
    spawn_parse_failures: int = 0
    spawns_over_budget: int = 0
    depth_reached: int = 0
    children_overlap_s: float | None = None
    child_context_tokens_max: int = 0


@register_strategy
class Parallel(Strategy):
    """Spawn/join: children reason concurrently on the parent's cached prefix."""

    name = "parallel"
    Options = ParallelOptions
    options: ParallelOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        question = f"{prompt}\n\n{SPAWN_HINT}"
        text_prompt = session.profile.build_prompt(
            session.tokenizer, question, thinking=False, answer_format=session.answer_format
        )
        counts = _Counts()
        prefill = f"{SPAWN_OPEN}\n- " if self.options.spawn == "always" else ""
        root = await _Threads(session, self.options, counts).run(
            session.encode(text_prompt), None, "answer", 0, session.remaining, prefill
        )
        metrics: dict[str, MetricValue] = {
            "spawns": counts.spawns,
            "children": counts.children,
            "children_cut": counts.children_cut,
            "results_written": counts.results_written,
            "children_refused": counts.children_refused,
            "tasks_dropped": counts.tasks_dropped,
            "spawn_parse_failures": counts.spawn_parse_failures,
            "spawns_over_budget": counts.spawns_over_budget,
            "depth_reached": counts.depth_reached,
            "children_overlap_s": counts.children_overlap_s,
            "parent_context_tokens": root.context_tokens,
            "child_context_tokens_max": counts.child_context_tokens_max,
        }
        return Outcome(text=root.text, answer=session.extract_answer(root.text), metrics=metrics)


class _Threads:
    """Runs threads recursively within one session, counting what happens."""

    def __init__(self, session: Session, options: ParallelOptions, counts: _Counts):
        self.session = session
        self.options = options
        self.counts = counts

    async def generate(self, ids: Sequence[int], cap: int, **kwargs: object) -> Generation | None:
        """One request, or None when the budget refuses it (deadline passed, nothing left)."""
        try:
            return await self.session.generate(
                list(ids), max_tokens=cap, temperature=self.options.temperature, **kwargs
            )
        except BudgetExhausted:
            return None

    async def run(
        self, context: list[int], parent: int | None, kind: str, depth: int, cap: int, prefill: str = ""
    ) -> _Thread:
        """Run one thread of at most `cap` tokens from the token ids `context`."""
        can_spawn = depth < self.options.max_depth
        reserve = self.options.answer_tokens if can_spawn and cap > self.options.answer_tokens else 0
        first_cap = cap - reserve
        stops = [SPAWN_CLOSE] if can_spawn else []
        if prefill:
            stops.append("\n\n")
            first_cap = min(first_cap, self.options.max_fanout * TASK_LINE_TOKENS)
        base = context + self.session.encode(prefill)
        edge = "spawn" if kind == "child" else "continue"
        first = await self.generate(
            base, first_cap, phase="answer", kind=kind, parent=parent, edge=edge, stop=stops, include_stop=can_spawn
        )
        if first is None:
            return _Thread(text="", last_node=None)
        thread = _Thread(prefill + first.text, first.node, len(first.token_ids), first.cut_by_limit, first)
        thread.context_tokens = len(base) + len(first.token_ids)
        closed_here = bool(prefill) and SPAWN_CLOSE not in thread.text
        if closed_here:
            thread.text = _close_task_list(thread.text, first.cut_by_limit)
        block = parse_spawn(thread.text) if can_spawn else None
        if block is None:
            if first.cut_by_limit and reserve:
                lead_in = self.session.profile.answer_lead_in
                ids = [*base, *_without_eos(self.session, first.token_ids), *self.session.encode(lead_in)]
                await self.extend(thread, ids, lead_in, cap, kind)
            return thread
        if block.malformed:
            self.counts.spawn_parse_failures += 1
            return await self.serial(thread, context, block, cap, kind)
        if (cap - thread.tokens - reserve) // min(len(block.tasks), self.options.max_fanout) < 1:
            self.counts.spawns_over_budget += 1
            return await self.serial(thread, context, block, cap, kind)
        if block.end == len(thread.text) and not closed_here:
            parent_ids = [*base, *_without_eos(self.session, first.token_ids)]
        else:
            parent_ids = context + self.session.encode(thread.text[: block.end])
        thread.text = thread.text[: block.end]
        await self.fork_and_join(thread, parent_ids, block.tasks, depth, cap - reserve, cap, kind)
        return thread

    async def fork_and_join(
        self, thread: _Thread, parent_ids: list[int], tasks: Sequence[str], depth: int, room: int, cap: int, kind: str
    ) -> None:
        """Spawn children for `tasks` in `room` tokens, join their results, and continue `thread`."""
        kept = tasks[: self.options.max_fanout]
        self.counts.tasks_dropped += len(tasks) - len(kept)
        share = (room - thread.tokens) // len(kept)
        children = await self.spawn(
            parent_ids, thread.last_node, kept, depth + 1, min(share, self.options.child_tokens or share)
        )
        joined = "".join(f"- {task}: {self.result(child)}\n" for task, child in zip(kept, children, strict=True))
        join_text = f"\n<join>\n{joined}</join>\n"
        thread.tokens += sum(child.tokens for child in children)
        node = await self.extend(thread, parent_ids + self.session.encode(join_text), join_text, cap, kind)
        if node is not None:
            for child in children:
                if child.last_node is not None:
                    self.session.trace.link(child.last_node, node, "join")

    async def spawn(
        self, parent_ids: list[int], parent: int | None, tasks: Sequence[str], depth: int, cap: int
    ) -> list[_Thread]:
        """Run one child per task, from its own task (isolated) or from the parent's ids (shared)."""
        self.counts.spawns += 1
        self.counts.depth_reached = max(self.counts.depth_reached, depth)
        calls = [self.run(self.child_prompt(parent_ids, task, depth), parent, "child", depth, cap) for task in tasks]
        if self.options.children == "concurrent":
            children = list(await asyncio.gather(*calls))
        else:
            children = [await call for call in calls]
        ran = [child.first for child in children if child.first is not None]
        self.counts.children += len(ran)
        self.counts.children_refused += len(children) - len(ran)
        self.counts.children_cut += sum(child.cut for child in children)
        self.counts.child_context_tokens_max = max(
            [self.counts.child_context_tokens_max, *(child.context_tokens for child in children)]
        )
        if ran and depth == 1:
            overlap = min(g.finished_at or 0.0 for g in ran) - max(g.started_at for g in ran)
            self.counts.children_overlap_s = max(overlap, 0.0)
        return children

    def child_prompt(self, parent_ids: list[int], task: str, depth: int) -> list[int]:
        """A child's prompt ids: its spawn message alone (isolated), or after the parent's ids (shared)."""
        session, message = self.session, CHILD_REQUEST.format(task=task)
        if self.options.context == "shared":
            return parent_ids + session.encode(follow_up_turn(session.tokenizer, message))
        if depth < self.options.max_depth:
            message += f"\n\n{SPAWN_HINT}"
        prompt = session.profile.build_prompt(
            session.tokenizer, message, thinking=False, answer_format=session.answer_format
        )
        return session.encode(prompt)

    def result(self, child: _Thread) -> str:
        """What the join brings back of a child: its whole reply (shared) or its result alone (isolated)."""
        if child.first is None:
            return "(not run: the budget is spent)"
        text = " ".join(child.text.split()) or "(no result)"
        if self.options.context == "isolated" and child.text.strip():
            text = self.returned(child.text)
            ids = self.session.encode(" ".join(text.split()))
            text = self.session.tokenizer.decode(ids[: self.options.result_tokens]).strip()
            if len(ids) > self.options.result_tokens:
                text += " ..."
        return f"{text} (cut off)" if child.cut else text

    def returned(self, child_text: str) -> str:
        """An isolated child's message for its parent; else its extracted answer, else its last paragraph."""
        written = parse_result(child_text)
        if written is not None:
            self.counts.results_written += 1
            return written
        answer = self.session.extract_answer(child_text)
        return answer if answer is not None else child_text.strip().split("\n\n")[-1]

    async def serial(self, thread: _Thread, context: list[int], block: SpawnBlock, cap: int, kind: str) -> _Thread:
        """Fall back to plain reasoning: continue from the text before the spawn block."""
        thread.text = thread.text[: block.start]
        await self.extend(thread, context + self.session.encode(thread.text), "", cap, kind)
        return thread

    async def extend(self, thread: _Thread, ids: list[int], joint: str, cap: int, kind: str) -> int | None:
        """Continue `thread` from `ids` (its text plus `joint`) with what is left of `cap`."""
        left = cap - thread.tokens
        if left < 1:
            return None
        more = await self.generate(ids, left, phase="answer", kind=kind, parent=thread.last_node)
        if more is None:
            return None
        thread.text += joint + more.text
        thread.tokens += len(more.token_ids)
        thread.context_tokens = len(ids) + len(more.token_ids)
        thread.cut = more.cut_by_limit
        thread.last_node = more.node
        return more.node


def _close_task_list(text: str, cut: bool) -> str:
    """Close a spawn block the response opened (`spawn="always"`); a cut-off last line is dropped."""
    lines = text.rstrip().split("\n")
    if cut and len(lines) > 2:
        lines.pop()
    return "\n".join(lines) + "\n" + SPAWN_CLOSE


def _without_eos(session: Session, token_ids: Sequence[int]) -> list[int]:
    ids = list(token_ids)
    while ids and ids[-1] in session.tokenizer.eos_token_ids:
        ids.pop()
    return ids
