"""Pages and images the toolkit writes (report plots, trace pages), and how it tells its own apart.

A user's file is never replaced by mistake: an existing output path is replaced only when it is
empty or carries our mark at its start (HTML and SVG: a comment on the line after the
declaration; PNG: a `Software` text chunk right after the header). Anything else (a folder, a
FIFO, a file of the user's) is refused with an `InputError` before a byte is written, and left
unchanged. A file is written whole to a temporary name beside it and renamed into place, so a
crash never leaves half a page.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO

from reasoner.errors import InputError
from reasoner.regular_files import READ_FLAGS, refuse_unless_regular

MARK = "written by reasoner"
"""What our pages and images say about who wrote them."""
HTML_START = f"<!DOCTYPE html>\n<!-- {MARK} -->\n"
SVG_DECLARATION = '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
SVG_START = f"{SVG_DECLARATION}<!-- {MARK} -->\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_SOFTWARE = {"Software": MARK}
"""The metadata to save a PNG with (matplotlib writes it as the first chunk after the header)."""
_HEAD_BYTES = 4096


def mark_svg(svg: str) -> str:
    """The SVG with our mark after its XML declaration (matplotlib's SVG starts with one)."""
    if not svg.startswith(SVG_DECLARATION):
        raise ValueError("the SVG does not start with the XML declaration matplotlib writes")
    return SVG_START + svg[len(SVG_DECLARATION) :]


def is_ours(head: bytes) -> bool:
    """Whether a file starting with `head` is a page or image the toolkit wrote."""
    if head.startswith(HTML_START.encode()) or head.startswith(SVG_START.encode()):
        return True
    return head.startswith(PNG_SIGNATURE) and _png_first_text(head) == PNG_SOFTWARE


def _png_first_text(head: bytes) -> dict[str, str] | None:
    """The key and value of the PNG's chunk after the header, when it is a text chunk."""
    offset = len(PNG_SIGNATURE)
    if head[offset + 4 : offset + 8] != b"IHDR":
        return None
    offset += 12 + struct.unpack(">I", head[offset : offset + 4])[0]
    if len(head) < offset + 8 or head[offset + 4 : offset + 8] != b"tEXt":
        return None
    length = struct.unpack(">I", head[offset : offset + 4])[0]
    key, _, value = head[offset + 8 : offset + 8 + length].partition(b"\x00")
    return {key.decode("latin-1"): value.decode("latin-1")}


def open_existing_output(path: str | Path, cannot_write: str, not_regular: str) -> BinaryIO | None:
    """The file at output `path` opened to read its start, or None when there is none yet.

    An `InputError` otherwise: `cannot_write` and why when the path is missing and its folder is
    not writable, or the OS refuses it; `not_regular` for a folder, FIFO or device.
    """
    target = Path(path)
    try:
        descriptor = os.open(target, READ_FLAGS)
    except FileNotFoundError:
        folder = target.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"{cannot_write}: {folder} is not a writable folder") from None
        return None
    except OSError as exc:
        raise InputError(f"{cannot_write}: {exc.strerror or exc}") from None
    refuse_unless_regular(descriptor, InputError, not_regular)
    return open(descriptor, "rb")


def check_output(path: str | Path, flag: str) -> None:
    """Refuse an output path we may not replace: anything but a missing path, an empty file or ours.

    `flag` names the option the path came from (`--plot`, `-o`), for the message.
    """
    existing = open_existing_output(
        path, f"cannot write {flag} {path}", f"{flag} {path} is not a regular file; pass a new file path"
    )
    if existing is None:
        return
    with existing:
        head = existing.read(_HEAD_BYTES)
    if head and not is_ours(head):
        raise InputError(f"{flag} {path} is a file reasoner did not write; it was left unchanged, pass a new path")


def write_output(path: str | Path, content: bytes, flag: str) -> None:
    """Write `content` to `path` after `check_output`, whole or not at all."""
    check_output(path, flag)
    target = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise InputError(f"cannot write {flag} {path}: {exc.strerror or exc}") from None
    try:
        with open(descriptor, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise InputError(f"cannot write {flag} {path}: {exc.strerror or exc}") from None
