"""Reading a file a user names without hanging on it: only a regular file of bounded size is read.

A path is opened non-blocking (`READ_FLAGS`: a FIFO without a writer does not hang the open),
then checked before a byte is read: a folder, FIFO, device or socket is refused, since reading
one may never end, and so is a file over the caller's size limit.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


def refuse_unless_regular(
    descriptor: int,
    error: Callable[[str], Exception],
    not_regular: str,
    *,
    max_bytes: int | None = None,
    too_large: str = "",
) -> None:
    """Close `descriptor` and raise `error(not_regular)` unless it is a regular file, or
    `error(too_large)` when it holds more than `max_bytes`; the caller's error type and words."""
    info = os.fstat(descriptor)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = not_regular
    elif max_bytes is not None and info.st_size > max_bytes:
        problem = too_large
    if problem is not None:
        os.close(descriptor)
        raise error(problem)
