"""Suite data files: the copies shipped in the package, and reading any JSONL file safely.

The benchmark files (GSM8K test, MATH-500, AIME 2024/2025, AMC 2023, MBPP) ship gzipped in
`evals/data/`, with their sources and licences in `evals/data/SOURCES.md`; they are found
through `importlib.resources`, so an installed wheel reads them like a source checkout.

`read_jsonl` reads a plain or gzipped JSONL file line by line. A line that is not JSON is
the caller's to skip; a file that is not UTF-8 text (a binary file, another encoding) is a
`SuiteError` naming the line, never a `UnicodeDecodeError`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasoner.errors import SuiteError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable  # Python 3.11+; only for type checking

PACKAGED_DATA: Traversable = files("evals") / "data"
"""The folder of data files shipped inside the `evals` package."""

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class JsonlLine:
    """One non-blank line of a JSONL file: its 1-based number and the parsed value (None if not JSON)."""

    number: int
    value: Any


def packaged_file(file_name: str) -> Traversable | None:
    """The packaged data file `file_name` (e.g. `gsm8k_test.jsonl.gz`), or None when not shipped."""
    candidate = PACKAGED_DATA / file_name
    return candidate if candidate.is_file() else None


def packaged_rows(file_name: str) -> list[dict[str, Any]]:
    """Every JSON object of a packaged data file, in file order."""
    source = packaged_file(file_name)
    if source is None:
        raise SuiteError(f"no packaged data file {file_name!r}; the package may be incomplete, reinstall it")
    return [line.value for line in read_jsonl(source) if isinstance(line.value, dict)]


def read_jsonl(source: Path | Traversable) -> Iterator[JsonlLine]:
    """The non-blank lines of a JSONL file, plain or gzipped (told by its first bytes, not its name)."""
    try:
        with source.open("rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            if head == _GZIP_MAGIC:
                with gzip.GzipFile(fileobj=raw) as unzipped:
                    yield from _lines(unzipped, source)
            else:
                yield from _lines(raw, source)
    except (OSError, EOFError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        raise SuiteError(f"cannot read suite data {source}: {detail}") from None


def _lines(handle: Iterable[bytes], source: Path | Traversable) -> Iterator[JsonlLine]:
    for number, raw_line in enumerate(handle, start=1):
        if b"\x00" in raw_line:
            raise SuiteError(f"suite data {source} is a binary file (NUL byte on line {number}); pass a JSONL file")
        try:
            text = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SuiteError(
                f"suite data {source} is not UTF-8 text (byte {raw_line[exc.start]:#04x} on line {number}); "
                "convert it to UTF-8 JSONL"
            ) from None
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        yield JsonlLine(number, value)
