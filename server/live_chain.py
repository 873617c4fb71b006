"""The live text of a solve whose one chain carries the answer: what may be streamed before it ends.

`direct` answers with its one request's text. `elastic` and `mode` think in `think` segments,
whose texts joined are the message's `reasoning_content`, then answer with one request: the
content is the profile's answer lead-in plus that request's text, cut at the end-of-thinking
delimiter and stripped (`strategies.elastic.run_elastic`); `mode`'s `off` is `direct`.
`latent_switch`'s requests carry tokens it drops (past a switch) and latent steps, so its chain is
what it reports as kept (`kept` events, `reasoner.events`): the explicit thinking as the rule keeps
it (a latent stretch adds no text, as in the final `reasoning_content`), and the answer, whose
content is the lead-in plus its text, stripped; an answer the switch cap forced is not reported, so
that content comes whole at the end. The stream's content is then cut at the request's stop strings.

`LiveChain` rebuilds that content from the tokens so far and releases only the part no later
token can change: never the tail that could still grow into a stop string or the delimiter,
nor trailing whitespace the final strip may drop. So what it releases is always a prefix of
the final message, and the rest comes when the solve ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasoner.events import SolveEvent
from reasoner.profiles import ModelProfile
from server.selection import SolvePlan


@dataclass(frozen=True)
class ContentShape:
    """How a single-chain strategy makes its content of its answer request's text; `kept`: its chain is
    the text it reports as kept, not its requests' output."""

    lead: str = ""
    close: str | None = None
    strip: bool = False
    kept: bool = False


def content_shape(plan: SolvePlan, profile: ModelProfile) -> ContentShape | None:
    """The shape of `plan`'s content, or None when the answer is chosen among chains (not streamed live)."""
    if plan.strategy == "direct" or (plan.strategy == "mode" and plan.options.get("mode") == "off"):
        return ContentShape()
    if plan.strategy in ("elastic", "mode"):
        return ContentShape(lead=profile.answer_lead_in, close=profile.think_close, strip=True)
    if plan.strategy == "latent_switch":
        return ContentShape(lead=profile.answer_lead_in, strip=True, kept=True)
    return None


def settled_prefix(text: str, markers: tuple[str, ...]) -> str:
    """`text` up to the first marker, or, with none in it, without a tail that could still become one."""
    cut = len(text)
    for marker in markers:
        found = text.find(marker)
        if found != -1:
            cut = min(cut, found)
        for length in range(min(len(marker) - 1, len(text)), 0, -1):
            if text.endswith(marker[:length]):
                cut = min(cut, len(text) - length)
                break
    return text[:cut]


@dataclass
class LiveChain:
    """The thinking and answer of one single-chain solve as they arrive, and how much of each was sent."""

    shape: ContentShape
    stops: tuple[str, ...]
    thinking: str = ""
    answer: str | None = None
    reasoning_sent: str = ""
    content_sent: str = ""

    def add(self, event: SolveEvent) -> None:
        """Take a solve event's new text: thinking segments into the reasoning, the answer request's into the answer."""
        if event.kept != self.shape.kept:
            return
        if event.phase == "thinking" and event.kind == "think":
            self.thinking += event.text
        elif event.phase == "answer" and event.kind == "answer":
            self.answer = (self.answer or "") + event.text

    def take_reasoning(self) -> str:
        """Thinking text not yet sent (thinking is never cut or stripped: all of it is final)."""
        delta = self.thinking[len(self.reasoning_sent) :]
        self.reasoning_sent = self.thinking
        return delta

    def take_content(self) -> str:
        """Content text that is settled and not yet sent."""
        settled = self._settled_content()
        if len(settled) <= len(self.content_sent):
            return ""
        delta = settled[len(self.content_sent) :]
        self.content_sent = settled
        return delta

    def _settled_content(self) -> str:
        if self.answer is None:
            return ""  # the lead-in is the answer's: it follows all of the thinking
        text = self.shape.lead + self.answer
        if self.shape.close:
            text = settled_prefix(text, (self.shape.close,))
        if self.shape.strip:
            text = text.strip()
        return settled_prefix(text, self.stops)

    def rest(self, reasoning: str, content: str) -> tuple[str, str, bool]:
        """What is left of the final `reasoning` and `content`, and whether what was sent is a prefix of them."""
        consistent = reasoning.startswith(self.reasoning_sent) and content.startswith(self.content_sent)
        return reasoning[len(self.reasoning_sent) :], content[len(self.content_sent) :], consistent
