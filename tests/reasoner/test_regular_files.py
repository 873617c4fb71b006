"""The shared checks before reading a user's file: only a regular file within its size is read,
a refused descriptor is closed, and each caller's error type and words come out unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reasoner.errors import InputError, SuiteError
from reasoner.output_files import open_existing_output
from reasoner.regular_files import READ_FLAGS, refuse_unless_regular


def closed(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
    except OSError:
        return True
    return False


def test_a_fifo_is_refused_with_the_callers_error_and_its_descriptor_closed(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    descriptor = os.open(fifo, READ_FLAGS)  # non-blocking: no writer, and the open still returns
    with pytest.raises(SuiteError, match="^pipe is no file$"):
        refuse_unless_regular(descriptor, SuiteError, "pipe is no file")
    assert closed(descriptor)


def test_a_file_over_the_limit_is_refused_and_one_at_the_limit_is_kept_open(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"x" * 10)
    over = os.open(path, READ_FLAGS)
    with pytest.raises(InputError, match="^too large$"):
        refuse_unless_regular(over, InputError, "not regular", max_bytes=9, too_large="too large")
    assert closed(over)
    at_limit = os.open(path, READ_FLAGS)
    refuse_unless_regular(at_limit, InputError, "not regular", max_bytes=10, too_large="too large")
    assert not closed(at_limit)
    os.close(at_limit)


def test_an_output_path_is_none_when_missing_a_handle_when_there_and_refused_in_a_missing_folder(
    tmp_path: Path,
) -> None:
    assert open_existing_output(tmp_path / "new.html", "cannot write -o", "not regular") is None
    (tmp_path / "old.html").write_bytes(b"<p>mine</p>")
    existing = open_existing_output(tmp_path / "old.html", "cannot write -o", "not regular")
    assert existing is not None
    with existing:
        assert existing.read() == b"<p>mine</p>"
    with pytest.raises(InputError, match=r"^cannot write -o: .*nowhere is not a writable folder$"):
        open_existing_output(tmp_path / "nowhere" / "page.html", "cannot write -o", "not regular")
    with pytest.raises(InputError, match="^not regular$"):
        open_existing_output(tmp_path, "cannot write -o", "not regular")
