"""One writer per output: a lock file naming its holder.

Two runs writing the same ``--out`` (or training into the same run
directory) would mix their results, so the second one is refused with a
line naming the first (its PID and command line). The lock is an
``fcntl.flock`` on a small file that also records the holder: the kernel
drops the lock when its process dies, however it dies (``kill -9``
included), so a lock left behind by a dead run is taken over with a
message instead of blocking every later run. A forked child (a reader
process) closes its copy of the descriptor at once: the lock lives as long
as the process that took it, not as long as its longest-lived child.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import sys
import weakref
from pathlib import Path

from deepscope.errors import OutputError

log = logging.getLogger(__name__)

LOCK_NAME = "_lock.json"
# Locks this process holds, by resolved path: released at exit even when the
# code that took them never got to release them (an error, a signal).
_HELD: dict[Path, "OutputLock"] = {}


def _describe_holder(record: dict) -> str:
    return f"PID {record.get('pid', '?')} ({record.get('command', 'unknown command')})"


def _read_record(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        record = json.loads(os.read(fd, 65536).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


class OutputLock:
    """An exclusive lock on an output, held until :meth:`release`.

    Parameters
    ----------
    path : str or Path
        The lock file (its directory must exist).
    what : str
        The output it guards, for messages (e.g. ``--out pred.csv``).

    Raises
    ------
    OutputError
        If another live process holds the lock, or the lock file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> lock = OutputLock(folder / "_lock.json", "demo")
    >>> try:
    ...     OutputLock(folder / "_lock.json", "demo")
    ... except OutputError as exc:
    ...     print(str(exc).split(":")[0])
    demo is being written by another run
    >>> lock.release()
    >>> (folder / "_lock.json").exists()
    False
    >>> folder.rmdir()
    """

    def __init__(self, path: str | Path, what: str):
        self.path = Path(path)
        self.what = what
        self._fd = self._acquire()
        _HELD[self.path.resolve()] = self
        # The descriptor is closed exactly once, by release() or at exit;
        # closing it drops the flock.
        self._finalizer = weakref.finalize(self, os.close, self._fd)

    def _acquire(self) -> int:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                msg = f"{self.what}: cannot create lock file {self.path}: {exc.strerror or exc}"
                raise OutputError(msg) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                record = _read_record(fd)
                os.close(fd)
                msg = (f"{self.what} is being written by another run: {_describe_holder(record)} holds "
                       f"{self.path}; wait for it to end, or write elsewhere")
                raise OutputError(msg) from None
            # The previous holder may have removed the file between our open
            # and our flock: then we locked an orphan inode, so try again.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_record(fd)
        if previous.get("pid") is not None:
            state = "is alive but no longer holds it" if _pid_alive(previous["pid"]) else "has ended"
            log.warning("%s: taking over the lock of an earlier run, %s, which %s", self.what,
                        _describe_holder(previous), state)
        record = {"pid": os.getpid(), "command": " ".join(sys.argv) or sys.executable}
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(record).encode())
        except OSError as exc:
            os.close(fd)
            msg = f"{self.what}: cannot write lock file {self.path}: {exc.strerror or exc}"
            raise OutputError(msg) from None
        return fd

    @property
    def held(self) -> bool:
        """Whether this lock is still held."""
        return self._finalizer.alive

    def release(self) -> None:
        """Remove the lock file and drop the lock (a no-op when already released)."""
        if not self.held:
            return
        _HELD.pop(self.path.resolve(), None)
        # Unlinked before the flock is dropped, so a waiting run that opened
        # the old file sees a changed inode and retries on a fresh file.
        self.path.unlink(missing_ok=True)
        self._finalizer()


def lock_output(directory: str | Path, what: str, reentrant: bool = False) -> OutputLock:
    """Take the lock of an output directory (``directory/_lock.json``).

    Parameters
    ----------
    directory : str or Path
        Existing directory that holds the output (parts, run directory).
    what : str
        The output, for messages.
    reentrant : bool
        Return the lock this process already holds on ``directory`` instead
        of refusing (a command that prepares its run directory twice).

    Raises
    ------
    OutputError
        If another run holds it.
    """
    path = Path(directory) / LOCK_NAME
    held = _HELD.get(path.resolve())
    if reentrant and held is not None and held.held:
        return held
    return OutputLock(path, what)


def release_all() -> None:
    """Release every lock this process still holds (end of a command, exit)."""
    for lock in list(_HELD.values()):
        lock.release()


def _forget_in_child() -> None:
    """In a forked child: drop the parent's locks, which the child must neither keep alive nor release."""
    for lock in _HELD.values():
        if lock._finalizer.detach():
            os.close(lock._fd)
    _HELD.clear()


atexit.register(release_all)
os.register_at_fork(after_in_child=_forget_in_child)
