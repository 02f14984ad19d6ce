"""Run a check as an unprivileged user, so that permission tests mean something under root.

CI runs as root, for whom a read-only directory is still writable; a forked
child that drops to ``nobody`` sees permissions as users do. It is forked
rather than started afresh because the interpreter may live where ``nobody``
cannot read (``/root/.pyenv``): whatever the check imports must already be
imported here.
"""

import contextlib
import io
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

NOBODY = 65534
CHILD_SECONDS = 60


def private_tmp():
    """A fresh directory under /tmp that ``nobody`` can enter (pytest's tmp_path is root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="deepscope-perm-"))
    folder.chmod(0o755)
    return folder


def run_unprivileged(function, *args):
    """``function(*args)`` as ``nobody`` when running as root, else as is.

    Returns
    -------
    result : object
        The function's (JSON-able) return value, or None if it raised.
    text : str
        What it wrote on stderr, or ``"TypeName: message"`` if it raised.
    """
    if os.geteuid() != 0:
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stderr(buffer):
                return function(*args), buffer.getvalue()
        except Exception as exc:  # noqa: BLE001 - reported the same way as in the child
            return None, f"{type(exc).__name__}: {exc}"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        signal.alarm(CHILD_SECONDS)  # a child stuck after fork dies instead of hanging the suite
        if "torch" in sys.modules:
            # OpenMP's thread pool does not survive fork: torch ops in the
            # child hang unless it computes on its own thread.
            sys.modules["torch"].set_num_threads(1)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            buffer = io.StringIO()
            with contextlib.redirect_stderr(buffer):
                answer = [function(*args), buffer.getvalue()]
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            answer = [None, f"{type(exc).__name__}: {exc}"]
        with os.fdopen(write, "w") as pipe:
            pipe.write(json.dumps(answer, default=str))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = json.loads(pipe.read() or '[null, "the unprivileged child died"]')
    os.waitpid(pid, 0)
    return tuple(answer)
