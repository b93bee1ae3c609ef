"""Writing outputs without tearing them: atomic writes (temporary file, fsync, rename), a full disk as
one line naming the folder and the space needed, and the checks of output paths given on the command line."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sweep.config.errors import ConfigError

FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(OSError):
    """No space left where an output goes: one line naming the folder, its free space and what is needed."""


def disk_full(folder: str | Path, needed: int | None = None) -> DiskFull:
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    want = f"; at least {megabytes(needed)} are needed" if needed else ""
    return DiskFull(errno.ENOSPC, f"no space left in {folder} ({megabytes(free)} free{want}); free some and run again")


def megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], None]) -> Path:
    """Write `content` (text, bytes, or a function writing the given temporary path) to `path` so that a
    crash or a full disk leaves either the old file or the new one, never a torn one, and no temporary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        if callable(content):
            content(tmp)
        else:
            tmp.write_bytes(content.encode() if isinstance(content, str) else content)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException as err:
        # torch.save reports a full disk as a RuntimeError of its zip writer: ask the disk itself
        full = isinstance(err, OSError) and err.errno in FULL or shutil.disk_usage(path.parent).free < 2**20
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        if full:
            needed = len(content) if isinstance(content, (str, bytes)) else written + 2**20
            raise disk_full(path.parent, needed) from None
        raise
    return path


def output_file(path: str | Path, flag: str) -> Path:
    """A file the command will write (`--json`): refused when it names a folder."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'out.json'}")
    return path


def output_folder(path: str | Path, flag: str) -> Path:
    """A folder the command will write into (`--out`): refused when it names a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file, not a folder; give a folder name")
    return path
