"""Eval records: one JSON object per line, appended and flushed as each result finishes.

A records file starts with a marker line (`HEADER`) that says the toolkit wrote it. A run
killed mid-write leaves at most one half-written last line. Reading skips it (and any other
malformed line, counted with its line number); opening the file to append again cuts it off
first, so the next record starts on a fresh line and nothing is duplicated.

A user's file is never changed: an existing `--out` is ours only when it starts with the
marker (or, written before the marker existed, when it holds at least one whole record and
every complete line is one), and it must be a regular file. Anything else is refused before
a byte is written or cut. One run writes a file at a time: the writer holds an exclusive lock
on it (`flock`) from opening to closing, and a second writer is refused. Reading is bounded:
a line over `MAX_LINE_BYTES` is malformed, a file over `MAX_FILE_BYTES` is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reasoner.errors import SuiteError
from reasoner.regular_files import READ_FLAGS, refuse_unless_regular

HEADER: dict[str, Any] = {"reasoner_records": 1}
"""The first line of every records file the toolkit writes."""
MAX_LINE_BYTES = 16 * 2**20
MAX_FILE_BYTES = 2**30
RECORD_FIELDS = ("key", "suite", "problem_id", "strategy", "budget", "correct", "usage")
"""Fields every record `make_record` writes has had: how a records file without the marker is recognised."""

_HEADER_LINE = (json.dumps(HEADER) + "\n").encode()
_TORN_RECORD_START = b'{"key": '
_SKIP = object()


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
    try:
        descriptor = os.open(source, READ_FLAGS)
    except FileNotFoundError:
        if must_exist:
            raise SuiteError(f"no records file at {source}; run `reasoner eval --out {source}` first") from None
        return result
    except OSError as exc:
        raise SuiteError(f"cannot read records {source}: {exc.strerror or exc}") from None
    with _regular(descriptor, source, "records", "rb") as handle:
        try:
            for number, raw in _lines(handle):
                record = _parse(raw)
                if record is _SKIP:
                    continue
                if isinstance(record, dict) and isinstance(record.get("key"), str):
                    result.records.append(record)
                else:
                    result.malformed_lines.append(number)
        except OSError as exc:
            raise SuiteError(f"cannot read records {source}: {exc.strerror or exc}") from None
    return result


class RecordWriter:
    """Appends records to a JSONL file, one flushed line each, holding the file's lock while open.

    Use as a context manager; `open` on a writer that is already open does nothing, so a caller
    can open it early (to check and lock the file) and hand it on.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def open(self) -> RecordWriter:
        """Open for appending (creating folders), locked; refuse a file that is not ours; cut a torn last line."""
        if self._handle is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise SuiteError(
                f"cannot write records to {self.path}: {exc.strerror or exc}; pass a writable --out path"
            ) from None
        handle = _regular(descriptor, self.path, "records", "a")
        try:
            _lock(handle, self.path)
            _prepare(handle.fileno(), self.path)
        except BaseException:
            handle.close()
            raise
        self._handle = handle
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


def _regular(descriptor: int, path: Path, what: str, mode: str) -> IO[Any]:
    """A file object on `descriptor`, after refusing a folder, FIFO, device or socket (reading
    one may never end) and an oversized file; the descriptor is closed when refused."""
    refuse_unless_regular(
        descriptor,
        SuiteError,
        f"{path} is not a regular file; pass a {what} file",
        max_bytes=MAX_FILE_BYTES,
        too_large=f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB; split the {what} into smaller files",
    )
    return open(descriptor, mode, encoding=None if "b" in mode else "utf-8")


def _lock(handle: IO[Any], path: Path) -> None:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SuiteError(
            f"another run is writing records to {path}; wait for it to finish or pass another --out path"
        ) from None


def _prepare(descriptor: int, path: Path) -> None:
    """Mark a new file as ours; check an existing one is ours and cut its torn last line."""
    size = os.fstat(descriptor).st_size
    if size == 0:
        os.write(descriptor, _HEADER_LINE)
        return
    with open(os.dup(descriptor), "rb") as reader:  # shares the offset, which appends do not use
        reader.seek(0)
        keep = _records_end(reader, path)
    if keep < size:
        os.ftruncate(descriptor, keep)


def _records_end(reader: IO[bytes], path: Path) -> int:
    """Where the complete lines of records file `path` end (its size unless the last line is torn).

    Raises when the file is not ours: no marker, and a complete line that is not a whole
    record, or no whole record at all.
    """
    marked, records, end = False, 0, 0
    for number, raw in _lines(reader):
        if raw is None:
            raise _not_records(path, number)
        if not raw.endswith(b"\n"):
            if raw.startswith(_TORN_RECORD_START) and (marked or records):
                return end
            raise _not_records(path, number)
        end += len(raw)
        if number == 1 and raw == _HEADER_LINE:
            marked = True
            continue
        record = _parse(raw)
        if record is _SKIP:
            continue
        if not is_record(record):
            raise _not_records(path, number)
        records += 1
    if not (marked or records):
        raise _not_records(path, 1)
    return end


def is_record(value: object) -> bool:
    """Whether `value` is an eval record as `reasoner eval` writes it (the fields it always wrote)."""
    return isinstance(value, dict) and all(name in value for name in RECORD_FIELDS) and isinstance(value["key"], str)


def _parse(raw: bytes | None) -> object:
    """A line's JSON value: `_SKIP` for a blank line or the marker, None for an overlong line or one not JSON."""
    if raw is None:
        return None
    if not raw.strip() or raw.rstrip(b"\n") == _HEADER_LINE.rstrip(b"\n"):
        return _SKIP
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(number, line) for each line, None for a line over `MAX_LINE_BYTES` (read past, never held whole)."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) <= MAX_LINE_BYTES:
            yield number, raw
            continue
        while not raw.endswith(b"\n") and (raw := handle.readline(MAX_LINE_BYTES)):
            pass
        yield number, None


def _not_records(path: Path, line: int) -> SuiteError:
    return SuiteError(
        f"{path} is not a records file (line {line} is not an eval record); it was left unchanged, "
        "pass a new --out path"
    )
