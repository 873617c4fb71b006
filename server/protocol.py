"""Request and response models in OpenAI's shape, plus the toolkit's own fields.

The OpenAI fields keep OpenAI's names and meaning. The toolkit's fields arrive through the
client's `extra_body` (they are plain top-level JSON fields): `strategy`, `budget` (an int
of total tokens or an object of `Budget` fields), `strategy_options` and `answer_format`.
Unknown fields are ignored, as OpenAI-compatible servers do; fields that ask for something
this server cannot give (`n > 1`, `logprobs`, `tools`, `echo`) are refused with a 400, as
are lists (messages, content parts, prompts) of more than `MAX_ITEMS` items.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

AnswerFormat = Literal["math", "code", "text"]
MAX_ITEMS = 4096


def _at_most_max_items(value: Any) -> Any:
    """Refuse a list longer than `MAX_ITEMS` before its items are validated (one by one, on the event loop)."""
    if isinstance(value, list) and len(value) > MAX_ITEMS:
        raise ValueError(f"at most {MAX_ITEMS} items, got {len(value)}")
    return value


def _utf8_text(text: str) -> str:
    """Refuse strings that cannot be written as UTF-8 (lone surrogates from `\\ud800` escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid UTF-8 (it holds a lone surrogate escape)") from None
    return text


class StreamOptions(BaseModel):
    """OpenAI's `stream_options`."""

    include_usage: bool = False


class TextPart(BaseModel):
    """One text part of a message's content list (the only part type this server reads)."""

    type: Literal["text"]
    text: str

    _utf8 = field_validator("text")(_utf8_text)


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    _utf8 = field_validator("content")(lambda value: _utf8_text(value) if isinstance(value, str) else value)
    _parts = field_validator("content", mode="before")(_at_most_max_items)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class SolveFields(BaseModel):
    """Fields both endpoints share: OpenAI's sampling caps and the toolkit's strategy and budget."""

    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(default=None, ge=1, description="Caps all tokens the solve generates.")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | Annotated[list[str], Field(max_length=16)] | None = Field(
        default=None, description="The returned content is cut at the first stop (16 at most)."
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="One choice per prompt; the strategy decides how many samples.")
    logprobs: bool | int | None = Field(default=None, description="Not offered: a solve's answer has no one logprob.")
    strategy: str | None = Field(default=None, description="Strategy name; overrides the one in `model`.")
    budget: int | dict[str, Any] | None = Field(default=None, description="Total tokens, or Budget fields.")
    strategy_options: dict[str, Any] = Field(default_factory=dict, description="Validated by the strategy.")
    answer_format: AnswerFormat = "math"

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | int | None) -> None:
        if value:
            raise ValueError("logprobs are not offered: a solve's answer is not one sequence of sampled tokens")
        return None

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [stop for stop in self.stop if stop]


class ChatCompletionRequest(SolveFields):
    """`POST /v1/chat/completions`."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, description="Caps all tokens the solve generates.")
    reasoning_effort: str | None = Field(default=None, description="low / medium / high: the `mode` strategy's dial.")
    tools: list[Any] | None = None

    _messages = field_validator("messages", mode="before")(_at_most_max_items)

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, value: list[Any] | None) -> None:
        if value:
            raise ValueError("tools are not offered by this server")
        return None

    def token_cap(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class CompletionRequest(SolveFields):
    """`POST /v1/completions`: each prompt is a question; the strategy applies the chat template."""

    prompt: str | list[str]
    echo: bool = False

    _prompts = field_validator("prompt", mode="before")(_at_most_max_items)
    _utf8 = field_validator("prompt")(
        lambda value: _utf8_text(value) if isinstance(value, str) else [_utf8_text(item) for item in value]
    )

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, value: bool) -> bool:
        if value:
            raise ValueError("echo is not offered: the prompt a strategy sends is not the one you gave")
        return value

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def token_cap(self) -> int | None:
        return self.max_tokens


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class UsageInfo(BaseModel):
    """OpenAI's usage, counted over every request of the solve(s)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = Field(default_factory=CompletionTokensDetails)


class ReasonerInfo(BaseModel):
    """The toolkit's account of one solve: what ran, what it spent, by phase, and its trace."""

    strategy: str
    budget: dict[str, Any]
    options: dict[str, Any]
    answer: str | None
    latency_s: float
    requests: int
    aborted_tokens_saved: int
    usage_by_phase: dict[str, int]
    usage_by_model: dict[str, int] = Field(default_factory=dict, description="Generated tokens per model.")
    cost: int | None = Field(default=None, description="eFLOPs of the solve (`reasoner.cost`); None when unpriced.")
    metrics: dict[str, Any]
    trace: dict[str, Any]


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str | None = None


FinishReason = Literal["stop", "length"]


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo
    reasoner: ReasonerInfo


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: FinishReason
    logprobs: None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo
    reasoner: list[ReasonerInfo]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "reasoner"
    root: str
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
