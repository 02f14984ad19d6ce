"""SHA-256 of files, each file read once per process.

Shipped weights are checked against their recorded sums when a model is
resolved, and the same checkpoint is hashed again into a batch job's
identity; inputs, catalogues and finished parts are hashed where jobs are
described and resumed. :func:`sha256` remembers each digest by the file's
identity on disk, so a run reads a file once however many places ask.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_DIGESTS: dict[tuple, str] = {}


def sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file, computed once per process for an unchanged file.

    A file counts as unchanged while its resolved path, size, modification
    time, inode and status-change time all stay the same; a file replaced
    by an atomic rename gets a new inode, so it is hashed again even within
    the clock's resolution.

    Parameters
    ----------
    path : str or Path
        File to hash, read in 1 MiB blocks (checkpoints may be large).

    Returns
    -------
    str
        64 lower-case hex digits.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "empty"
    ...     path.write_bytes(b"")
    ...     sha256(path)[:16]
    0
    'e3b0c44298fc1c14'
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _read_digest(path)
    return _DIGESTS[key]


def _read_digest(path: os.PathLike) -> str:
    """The digest, from the file's bytes (the one place that reads them)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
