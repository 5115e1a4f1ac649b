"""Files a match writes that a later game reads: written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_whole(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder, synced and
    renamed over it: a game killed while saving, or two games saving the same file,
    leave one whole file, never a half one (raises OSError)."""
    target = Path(path)
    fd, part = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
