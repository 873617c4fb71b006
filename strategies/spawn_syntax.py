"""The spawn syntax of `parallel`: a `<spawn>` block of task lines, or APR's `spawn(...)` call,
and what a child hands back: the paragraph after its `Result:` marker, or APR's `join(...)` call.

    <spawn>
    - first subtask
    - second subtask
    </spawn>

    ... (the child's work)
    Result: what the parent needs

`parse_spawn` finds the first spawn instruction in a text and returns its tasks and where it
sits; `parse_result` finds the message a child wrote for its parent (its last one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SPAWN_OPEN, SPAWN_CLOSE = "<spawn>", "</spawn>"
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")
_CALL = re.compile(r"\bspawn\(")
_RESULT = re.compile(r"^[ \t*_#>]*result[*_]*[ \t]*:[*_]*", re.IGNORECASE | re.MULTILINE)
_JOIN_CALL = re.compile(r"(?<![<\w])join\(")
RESULT_MARKER = "Result:"
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'')


@dataclass(frozen=True)
class SpawnBlock:
    """The first spawn instruction in a text: its tasks and where it sits (character offsets)."""

    tasks: tuple[str, ...]
    start: int
    end: int

    @property
    def malformed(self) -> bool:
        return not self.tasks


def parse_spawn(text: str) -> SpawnBlock | None:
    """The first `<spawn>` block or APR `spawn(...)` call; None when there is neither.

    A block that is never closed, or that names no task, comes back with no tasks (malformed).
    Repeated tasks are kept once.
    """
    tag = text.find(SPAWN_OPEN)
    call = _CALL.search(text)
    if call is not None and (tag < 0 or call.start() < tag):
        close = _closing_paren(text, call.end())
        if close is None:
            return SpawnBlock((), call.start(), len(text))
        tasks = tuple((double or single).strip() for double, single in _QUOTED.findall(text[call.end() : close]))
        return SpawnBlock(_distinct(tasks), call.start(), close + 1)
    if tag < 0:
        return None
    close_tag = text.find(SPAWN_CLOSE, tag)
    if close_tag < 0:
        return SpawnBlock((), tag, len(text))
    lines = (_BULLET.sub("", line).strip() for line in text[tag + len(SPAWN_OPEN) : close_tag].splitlines())
    return SpawnBlock(_distinct(lines), tag, close_tag + len(SPAWN_CLOSE))


def parse_result(text: str) -> str | None:
    """The message a child wrote for its parent; None when it wrote none.

    That is the paragraph after the last line-opening `Result:` marker (any case, markdown
    emphasis allowed), or the quoted message of APR's `join("...")` call, whichever comes last.
    An empty message counts as none.
    """
    marker = _last(_RESULT.finditer(text))
    call = _last(_JOIN_CALL.finditer(text))
    if call is not None and (marker is None or call.start() > marker.start()):
        close = _closing_paren(text, call.end())
        quoted = _QUOTED.findall(text[call.end() : close if close is not None else len(text)])
        message = " ".join((double or single).strip() for double, single in quoted).strip()
        return message or None
    if marker is None:
        return None
    message = text[marker.end() :].strip().split("\n\n", 1)[0].strip()
    return message or None


def _last(matches: Iterable[re.Match[str]]) -> re.Match[str] | None:
    found = list(matches)
    return found[-1] if found else None


def _distinct(tasks: Iterable[str]) -> tuple[str, ...]:
    """Non-empty tasks, each once, in order: a repeated task would only be solved twice."""
    return tuple(dict.fromkeys(task for task in tasks if task))


def _closing_paren(text: str, start: int) -> int | None:
    depth, quote = 1, ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return None
