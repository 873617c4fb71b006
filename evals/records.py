"""Eval records: one JSON object per line, appended and flushed as each result finishes.

A run killed mid-write leaves at most one half-written last line. Reading skips it (and any
other malformed line, counted with its line number); opening the file to append again cuts
it off first, so the next record starts on a fresh line and nothing is duplicated. A file
that is not a records file (a line that is not a record, or a last line that is not the
start of one) is refused before anything is written or cut: a user's file is never changed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reasoner.errors import SuiteError

_TORN_RECORD_START = b'{"key": '


def record_key(
    suite: str, problem_id: str, strategy: str, budget: int, options: dict[str, Any], model: str = ""
) -> str:
    """The identity of one result: a rerun skips keys already in the file (the same model's only)."""
    options_text = json.dumps(options, sort_keys=True, separators=(",", ":"))
    return f"{suite}|{problem_id}|{strategy}|{budget}|{options_text}|{model}"


@dataclass
class RecordFile:
    """The records read from one file, and the line numbers that were not records."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    malformed_lines: list[int] = field(default_factory=list)

    @property
    def keys(self) -> set[str]:
        return {record["key"] for record in self.records}


def read_records(path: str | Path, *, must_exist: bool = True) -> RecordFile:
    """Every well-formed record of a JSONL file; a line that is not a JSON object with a `key` is skipped."""
    source = Path(path)
    result = RecordFile(source)
    if not source.exists():
        if must_exist:
            raise SuiteError(f"no records file at {source}; run `reasoner eval --out {source}` first")
        return result
    try:
        with source.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    result.malformed_lines.append(number)
                    continue
                if isinstance(record, dict) and isinstance(record.get("key"), str):
                    result.records.append(record)
                else:
                    result.malformed_lines.append(number)
    except OSError as exc:
        raise SuiteError(f"cannot read records {source}: {exc.strerror or exc}") from None
    return result


class RecordWriter:
    """Appends records to a JSONL file, one flushed line each. Use as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def open(self) -> RecordWriter:
        """Open for appending (creating folders), first cutting off a half-written last line."""
        check_records_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _drop_partial_last_line(self.path)
            self._handle = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise SuiteError(
                f"cannot write records to {self.path}: {exc.strerror or exc}; pass a writable --out path"
            ) from None
        return self

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a single line and flush it to the OS."""
        if self._handle is None:
            raise SuiteError(f"records file {self.path} is not open; call open() first")
        self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RecordWriter:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_records_file(path: Path) -> None:
    """Refuse an existing file that is not a records file, so that appending cannot damage it.

    Every complete line must be a record (a JSON object with a string `key`); a last line
    without its newline must be the start of one (what a killed run leaves).
    """
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n"):
                    if raw.startswith(_TORN_RECORD_START):
                        return
                    raise _not_records(path, number)
                try:
                    record = json.loads(raw)
                except ValueError:
                    raise _not_records(path, number) from None
                if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                    raise _not_records(path, number)
    except OSError as exc:
        raise SuiteError(f"cannot read records {path}: {exc.strerror or exc}; pass a readable --out path") from None


def _not_records(path: Path, line: int) -> SuiteError:
    return SuiteError(
        f"{path} is not a records file (line {line} is not an eval record); it was left unchanged, "
        "pass a new --out path"
    )


def _drop_partial_last_line(path: Path) -> None:
    """Truncate after the last newline when the file does not end with one."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        size = handle.seek(0, os.SEEK_END)
        keep = 0
        position = size
        chunk = 4096
        while position > 0:
            start = max(0, position - chunk)
            handle.seek(start)
            block = handle.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        handle.truncate(keep)
