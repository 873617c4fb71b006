"""The spawn syntax of `parallel`: a `<spawn>` block of task lines, or APR's `spawn(...)` call.

    <spawn>
    - first subtask
    - second subtask
    </spawn>

`parse_spawn` finds the first instruction in a text and returns its tasks and where it sits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SPAWN_OPEN, SPAWN_CLOSE = "<spawn>", "</spawn>"
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")
_CALL = re.compile(r"\bspawn\(")
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
