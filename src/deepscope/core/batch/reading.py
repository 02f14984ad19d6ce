"""Reading one partition's inputs: on threads, or in forked reader processes that die with their parent.

A predictor's ``load_input(path)`` runs on a thread per input. A predictor
that also has ``load_many`` (a picklable callable, ``paths -> list`` of the
model input or the exception of each path) gets chunks of inputs instead,
run in the reader processes of :func:`reader_processes` when the partition
is large, so decoders that hold the GIL (astropy's FITS headers) use every
core. Either way a bad input costs only itself: it is listed with its
reason and the good ones are kept.
"""

import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from deepscope.errors import DeepscopeError

log = logging.getLogger(__name__)

# Inputs handed to one ``load_many`` call: enough that a library's files are
# decoded as one block, few enough that the reader processes share a
# partition evenly.
CHUNK_SIZE = 64
# Smaller partitions are read in this process: a reader's first chunk warms
# its caches, which only pays on many inputs.
MIN_INPUTS_FOR_PROCESSES = 256
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# In a reader process: the predictor it reads for, inherited (not pickled) when it forked.
_inherited = None


class Loaded(NamedTuple):
    """A partition read: what the runner hands to ``predictor.rows`` and writes beside its answers."""

    names: list  # the good inputs, in input order
    items: Sequence  # their model inputs; sliced into batches for ``predictor.rows``
    carried: list | None  # per good input, a dict of columns its row carries (catalogue columns ...)
    failures: list  # (name, reason) of every bad input


def _reason(exc, path, name):
    """The one-line reason an input failed, naming it as the user gave it."""
    if isinstance(exc, DeepscopeError):
        return str(exc).replace(str(path), name)
    # An unexpected decoder failure still only costs this input.
    return f"cannot read ({type(exc).__name__}: {exc})"


def _local_path(ref, scratch):
    """A path readers can open: the file itself, or a tar member written under ``scratch`` (its own directory)."""
    if not ref.in_tar:
        return Path(ref.path)
    # Readers take paths, so a member gets a short-lived file under
    # its own name (outputs such as STAR files are named by stem).
    path = Path(scratch) / Path(ref.name).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ref.read_member())
    return path


def _load_each(predictor, paths):
    """``load_many`` for a predictor without one: its ``load_input`` on each path."""
    items = []
    for path in paths:
        try:
            items.append(predictor.load_input(path))
        except Exception as exc:  # noqa: BLE001 - see _reason
            items.append(exc)
    return items


def _load_chunk(load_many, paths, names):
    """``(item, None)`` or ``(None, reason)`` for each path, by a predictor's ``load_many``.

    Runs in a reader process too, so failures come back as strings (not
    every exception pickles).
    """
    try:
        loaded = load_many(paths)
    except Exception:  # noqa: BLE001 - a fault outside any one file: read them singly to keep the good ones
        loaded = []
        for path in paths:
            try:
                loaded += load_many([path])
            except Exception as exc:  # noqa: BLE001 - see _reason
                loaded.append(exc)
    return [(None, _reason(item, path, name)) if isinstance(item, Exception) else (item, None)
            for item, path, name in zip(loaded, paths, names)]


def _start_reader(parent, predictor):
    """Reader process initializer: keep the inherited predictor, and die with the parent."""
    global _inherited
    _inherited = predictor
    # SIGKILL when the thread that forked this process ends: a reader must never outlive its run.
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)


def inherited_predictor():
    """In a reader process of :func:`reader_processes`: the predictor it reads for."""
    return _inherited


@contextmanager
def reader_processes(predictor, read_threads, wanted=True):
    """Reader processes for a predictor with ``load_many``, or None where threads serve.

    Decoding FITS headers is Python that holds the GIL, so threads use one
    core however many there are; processes use them all. They are forked
    here, from the calling thread, once ``load_many([])`` has imported the
    decoders: they start at once with everything imported, hold the
    predictor as it is (:func:`inherited_predictor`), and get SIGKILL when
    this process dies, however it dies. Elsewhere than on Linux (macOS
    offers fork, but its system libraries are not safe in a forked child)
    and in daemonic processes (Dask workers), threads read.

    ``read_threads`` readers are started; fewer than 2, or ``wanted`` false
    (no partition large enough to use them), yields None.
    """
    usable = (wanted and getattr(predictor, "load_many", None) is not None and read_threads > 1
              and sys.platform.startswith("linux") and not multiprocessing.current_process().daemon)
    if not usable:
        yield None
        return
    from threadpoolctl import threadpool_limits

    predictor.load_many([])
    # The readers take the other cores: a BLAS pool of several threads here would only spin against them.
    with ProcessPoolExecutor(read_threads, mp_context=multiprocessing.get_context("fork"), initializer=_start_reader,
                             initargs=(os.getpid(), predictor)) as pool, threadpool_limits(limits=1, user_api="blas"):
        pool.submit(int).result()  # a fork pool starts every reader at its first task: now, from this thread
        yield pool


def load_partition(predictor, refs, read_threads=2, processes=None, carried=None) -> Loaded:
    """Decode one partition's inputs, setting bad ones aside.

    Parameters
    ----------
    predictor : object
        Has ``load_input(path)``, and maybe ``load_many`` (module docstring).
    refs : list of InputRef
    read_threads : int
        Decoding threads (image and FITS decoders release the GIL).
    processes : concurrent.futures.ProcessPoolExecutor, optional
        From :func:`reader_processes`: they read a large partition in
        chunks; threads read it otherwise.
    carried : list of dict, optional
        Columns each input's row carries; those of the good inputs are kept.

    Returns
    -------
    Loaded
    """
    load_many = getattr(predictor, "load_many", None) or functools.partial(_load_each, predictor)
    loaded, paths, todo = [None] * len(refs), [], []
    with tempfile.TemporaryDirectory(prefix="deepscope-") as scratch, \
            ThreadPoolExecutor(max_workers=max(1, read_threads)) as threads:
        for i, ref in enumerate(refs):
            try:
                paths.append(_local_path(ref, Path(scratch) / str(i)))
                todo.append(i)
            except Exception as exc:  # noqa: BLE001 - see _reason
                loaded[i] = (None, _reason(exc, ref.path, ref.name))
        size = max(1, min(CHUNK_SIZE, -(-len(todo) // max(1, read_threads))))
        chunks = [(todo[k:k + size], paths[k:k + size]) for k in range(0, len(todo), size)]

        def read(pool, chunk):
            return pool.submit(_load_chunk, load_many, chunk[1], [refs[i].name for i in chunk[0]])

        pool = processes if processes is not None and len(todo) >= MIN_INPUTS_FOR_PROCESSES else threads
        futures = []
        for chunk in chunks:
            try:
                futures.append(read(pool, chunk))
            except BrokenProcessPool:
                futures.append(None)
        for chunk, future in zip(chunks, futures):
            try:
                results = future.result() if future is not None else None
            except BrokenProcessPool:
                results = None
            if results is None:
                # A reader process died (killed, or a decoder crashed): read here what it held.
                log.warning("reader processes stopped; reading %d inputs in this process", len(chunk[0]))
                results = read(threads, chunk).result()
            for i, result in zip(chunk[0], results):
                loaded[i] = result
    good = [i for i, (_, error) in enumerate(loaded) if error is None]
    return Loaded([refs[i].name for i in good], [loaded[i][0] for i in good],
                  None if carried is None else [carried[i] for i in good],
                  [(ref.name, error) for ref, (_, error) in zip(refs, loaded) if error is not None])
