"""From an OpenAI request to what to solve: prompt, strategy, budget and options.

- The strategy comes from `strategy` (extra_body), else from the model name: the served
  model's name (or `default`) means the server's default strategy, `<strategy>` or
  `<strategy>@<budget>` (e.g. `elastic@1024`) name one. `reasoning_effort` low / medium /
  high (minimal / none: off) selects the `mode` strategy's dial.
- A server of several models (`reasoner serve --model small=... --model large=...`) takes a
  model's name, alone (its default strategy) or before a colon and the above
  (`large:elastic@1024`); a name without one runs on the default (the first) model. An
  unknown name before a colon is a 400.
- The budget comes from `budget` (an int, or `Budget` fields), else from the model name,
  else `max_completion_tokens` / `max_tokens`, else the server's default; the token cap
  (`max_completion_tokens` / `max_tokens`) then caps it: every request of the solve together.
- `temperature` / `top_p` become strategy options where the strategy has them (`temperature`
  sets `sampling_temperature` where a strategy has both). A strategy that samples by default
  and chooses among its samples (`self_consistency`, `self_eval`, `deepconf`, `tree_search`,
  `particle_filter`) refuses `temperature: 0` with a 400 that says how to fix it, rather than
  spend its samples on copies of one greedy chain (lm-eval sends `temperature: 0` always).
- `strategy_options` may not set an option that names something outside the request (a URL,
  a file, an engine): those are the operator's. A strategy marks such a field with
  `json_schema_extra={"operator_only": True}`; names ending in `_file`, `_path`, `_dir` or
  `_url` count as marked, for strategies that have not marked theirs. The operator sets them
  (`reasoner serve --strategy-option route.policy_file=FILE`, `server.operator_options`): every
  request of that strategy runs with the operator's options, and one that sets any of them to
  another value is a 400, never silently overridden.
- A chat becomes one question: the system (developer) messages, then the user's message,
  or for a multi-turn chat the turns written out as `User:` / `Assistant:` lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic.fields import FieldInfo

from reasoner import Budget, Reasoner, get_strategy, strategy_names
from reasoner.budget import as_budget
from server.config import ServerConfig
from server.errors import APIError
from server.operator_options import merge_operator_options
from server.protocol import ChatCompletionRequest, ChatMessage, CompletionRequest, SolveFields

RESERVED_OPTION_NAMES = frozenset({"prompt", "budget", "strategy", "answer_format", "on_event", "model"})
EFFORT_MODES = {"high": "high", "medium": "medium", "low": "low", "minimal": "off", "none": "off"}
OPERATOR_ONLY_SUFFIXES = ("_file", "_path", "_dir", "_url")
MODEL_BUDGET = re.compile(r"[0-9]{1,12}")
# OpenAI's sampling fields and the strategy option each sets, the first a strategy has: a strategy whose
# `temperature` is something else (particle_filter's resampling weights) names its sampling `sampling_temperature`.
SAMPLING_FIELDS = {"temperature": ("sampling_temperature", "temperature"), "top_p": ("top_p",)}


@dataclass(frozen=True)
class SolvePlan:
    """One solve the server runs for a request, validated before it is queued."""

    prompt: str
    strategy: str
    budget: Budget
    options: dict[str, Any] = field(default_factory=dict)
    answer_format: str = "math"
    stops: tuple[str, ...] = ()
    on_model: str | None = None

    @property
    def model(self) -> str:
        """What runs, as a model name (`[model:]strategy@budget`): a response's `model`, whatever name selected it."""
        prefix = f"{self.on_model}:" if self.on_model is not None else ""
        return f"{prefix}{self.strategy}@{self.budget.tokens}"


def model_from_name(model: str, config: ServerConfig) -> tuple[str | None, str]:
    """(the served model a request's model name picks or None for the default, the rest of the name)."""
    name, colon, rest = model.partition(":")
    if name in config.models:
        return name, rest
    if colon and config.models:
        raise APIError(
            400,
            f"unknown model {name!r} in {model!r}; this server's models are {', '.join(config.models)}",
            code="model_not_found",
            param="model",
        )
    return None, model


def strategy_from_model(model: str, config: ServerConfig) -> tuple[str, int | None]:
    """(strategy, budget or None) that a model name selects; unknown names are a 404, bad budgets a 400."""
    _, model = model_from_name(model, config)
    name, at, budget_text = model.partition("@")
    if name in (config.model_name, "default", ""):
        name = config.default_strategy
    elif name not in strategy_names():
        if at:
            raise APIError(400, f"unknown strategy {name!r} in model {model!r}; known: {', '.join(strategy_names())}")
        raise APIError(
            404,
            f"the model {model!r} does not exist; use {config.model_name!r}, a strategy name "
            f"({', '.join(strategy_names())}) or '<strategy>@<budget>'",
            code="model_not_found",
            param="model",
        )
    if not at:
        return name, None
    if not MODEL_BUDGET.fullmatch(budget_text) or int(budget_text) < 1:
        raise APIError(400, f"the budget in model {model!r} must be a positive integer, e.g. 'elastic@1024'")
    return name, int(budget_text)


def resolve_budget(
    explicit: int | dict[str, Any] | None, from_model: int | None, cap: int | None, default: int
) -> Budget:
    """The solve's budget: explicit, else the model name's, else the cap, else the default; then capped."""
    chosen = explicit if explicit is not None else from_model
    budget = as_budget(chosen if chosen is not None else (cap if cap is not None else default))
    if cap is not None and cap < budget.tokens:
        budget = Budget(**(budget.model_dump() | {"tokens": cap}))
    return budget


def is_operator_only(name: str, declared: FieldInfo | None) -> bool:
    """Whether an option names something outside the request, so only the operator may set it."""
    extra = declared.json_schema_extra if declared is not None else None
    return name.endswith(OPERATOR_ONLY_SUFFIXES) or (isinstance(extra, dict) and extra.get("operator_only") is True)


def _options(request: SolveFields, strategy: str, effort_mode: str | None, config: ServerConfig) -> dict[str, Any]:
    known = get_strategy(strategy).Options.model_fields
    options = dict(request.strategy_options)
    reserved = sorted(set(options) & RESERVED_OPTION_NAMES)
    if reserved:
        raise APIError(400, f"strategy_options may not set {', '.join(reserved)}; send them as request fields")
    operators = sorted(name for name in options if is_operator_only(name, known.get(name)))
    if operators:
        raise APIError(
            400,
            f"strategy option {', '.join(operators)} names something on the server's side (a URL, a file or an "
            "engine); only the server's operator sets it, it is not accepted over the API",
            param="strategy_options",
        )
    for field_name, option_names in SAMPLING_FIELDS.items():
        value = getattr(request, field_name)
        target = next((name for name in option_names if name in known), None)
        if value is None or target is None or target in options:
            continue
        default = known[target].default
        if field_name == "temperature" and value == 0 and isinstance(default, float) and default > 0:
            raise APIError(
                400,
                f"temperature 0 would make every sample of {strategy} the same greedy chain, and it chooses among "
                f"its samples; leave temperature out to sample at its own {default} (or send one above 0; lm-eval: "
                f"--gen_kwargs temperature={default}); for one greedy chain use direct or elastic",
                param="temperature",
                code="greedy_samples",
            )
        options[target] = value
    if effort_mode is not None:
        options.setdefault("mode", effort_mode)
    return merge_operator_options(strategy, options, config.strategy_options)


def _strategy_and_budget(
    request: SolveFields, config: ServerConfig, effort: str | None, cap: int | None
) -> tuple[str, Budget, str | None]:
    strategy, model_budget = strategy_from_model(request.model, config)
    if request.strategy is not None:
        strategy = request.strategy
    effort_mode = None
    if effort is not None:
        if effort not in EFFORT_MODES:
            raise APIError(400, f"reasoning_effort {effort!r} is not one of {', '.join(EFFORT_MODES)}")
        effort_mode = EFFORT_MODES[effort]
        if request.strategy is None and "@" not in request.model and strategy == config.default_strategy:
            strategy = "mode"
        if strategy != "mode":
            raise APIError(400, f"reasoning_effort sets the 'mode' strategy's dial; strategy {strategy!r} has none")
    get_strategy(strategy)
    budget = resolve_budget(request.budget, model_budget, cap, config.default_budget)
    if budget.tokens > config.max_budget:
        limit = f"this server's limit of {config.max_budget}"
        raise APIError(400, f"a budget of {budget.tokens} tokens is above {limit}", param="budget")
    return strategy, budget, effort_mode


def conversation_text(messages: list[ChatMessage]) -> str:
    """The question a chat asks, as one text (see the module docstring)."""
    system = [message.text() for message in messages if message.role in ("system", "developer") and message.text()]
    turns = [message for message in messages if message.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise APIError(400, "the last message must be the user's question", param="messages")
    if len(turns) == 1:
        body = turns[0].text()
    else:
        body = "\n\n".join(f"{'User' if turn.role == 'user' else 'Assistant'}: {turn.text()}" for turn in turns)
    return "\n\n".join([*system, body])


def plan_chat(request: ChatCompletionRequest, config: ServerConfig, reasoner: Reasoner) -> SolvePlan:
    """The one solve a chat completion runs, validated now (a 400 before it is queued)."""
    strategy, budget, effort_mode = _strategy_and_budget(request, config, request.reasoning_effort, request.token_cap())
    plan = SolvePlan(
        prompt=conversation_text(request.messages),
        strategy=strategy,
        budget=budget,
        options=_options(request, strategy, effort_mode, config),
        answer_format=request.answer_format,
        stops=tuple(request.stops()),
        on_model=model_from_name(request.model, config)[0],
    )
    validate(plan, reasoner)
    return plan


def plan_completions(request: CompletionRequest, config: ServerConfig, reasoner: Reasoner) -> list[SolvePlan]:
    """One solve per prompt of a completion request, each with the whole budget."""
    prompts = request.prompts()
    if not prompts:
        raise APIError(400, "prompt is empty; pass at least one prompt", param="prompt")
    strategy, budget, _ = _strategy_and_budget(request, config, None, request.token_cap())
    options = _options(request, strategy, None, config)
    on_model = model_from_name(request.model, config)[0]
    plans = [
        SolvePlan(prompt, strategy, budget, options, request.answer_format, tuple(request.stops()), on_model)
        for prompt in prompts
    ]
    for plan in plans:
        validate(plan, reasoner)
    return plans


def validate(plan: SolvePlan, reasoner: Reasoner) -> None:
    """Raise the typed error the solve would raise (a 400), before queueing it."""
    reasoner.validate(
        plan.prompt, plan.budget, plan.strategy, answer_format=plan.answer_format, model=plan.on_model, **plan.options
    )
