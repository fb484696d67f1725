"""Result files that survive: atomic writes, checkpoints, and what ``--resume`` needs.

A result file is only ever replaced whole: the new text goes to a temporary
file in the same folder, is flushed to the disk (``fsync``), and is renamed
over the old one (atomic on POSIX within one file system). A SIGKILL, a crash
or a full disk at any moment therefore leaves either the previous complete
file or the new one, never a truncated mix; a failed write removes its
temporary file and says which path it could not write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from launcher.errors import ExitCode, LaunchError


class ResultWriteError(LaunchError):
    """A result file could not be written; the previous one, if any, is untouched."""

    exit_code = ExitCode.USAGE


def _mode_for(path: Path) -> int:
    # mkstemp creates 0600; the result should have the mode a plain write gives
    # (or keep the one the replaced file had).
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once; :class:`ResultWriteError` (one line) when it cannot."""
    folder = path.parent if str(path.parent) else Path(".")
    tmp: str | None = None
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        kept = "the previous file is kept" if path.exists() else "nothing was written"
        raise ResultWriteError(f"cannot write {str(path)!r}: {reason}; {kept}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    # The rename is durable once the folder's entry is on the disk too.
    with contextlib.suppress(OSError):
        dir_handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_handle)
        finally:
            os.close(dir_handle)
