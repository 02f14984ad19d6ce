"""Decoding one partition's inputs: on threads, or in reader processes for a predictor with ``load_many``.

:func:`load_partition` is what :mod:`deepscope.core.inference` runs on
every partition, in process or on a Dask worker. A predictor's
``load_input(path)`` is called on a thread per input; a predictor that
also has ``load_many`` (a picklable callable, ``paths -> list`` of the
model input or the exception of each path) gets chunks of inputs instead,
run in the reader processes of :func:`reader_processes` when the partition
is large, so decoders that hold the GIL (astropy's FITS headers) use every
core; ``load_many([])`` is called here first, so that the modules it
imports are imported before the readers fork. Either way a bad input costs
only itself: it is listed with its reason and the good ones are kept.
"""

import logging
import multiprocessing
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

from deepscope.errors import DeepscopeError

log = logging.getLogger(__name__)

# Inputs handed to one ``load_many`` call: enough that a library's files are
# decoded as one block, few enough that the reader processes share a
# partition evenly.
CHUNK_SIZE = 64
# Smaller partitions are read in this process: a reader process costs a fork
# and its first chunk warms its caches, which only pays on many inputs.
MIN_INPUTS_FOR_PROCESSES = 256


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


def _load_one(predictor, ref, scratch):
    """Load one input; return ``(item, None)`` or ``(None, reason)``."""
    path = ref.path
    try:
        path = _local_path(ref, scratch)
        return predictor.load_input(path), None
    except Exception as exc:  # noqa: BLE001 - see _reason
        return None, _reason(exc, path, ref.name)


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


@contextmanager
def reader_processes(predictor, read_threads, initializer=None, initargs=()):
    """Reader processes for a predictor with ``load_many``, or None where threads serve.

    Decoding FITS headers is Python that holds the GIL, so threads use one
    core however many there are; processes use them all. They are forked
    (they start at once, with everything imported, and do not re-run the
    user's script as spawned ones would) on the first partition large
    enough to need them; elsewhere than on Linux, threads read.

    Parameters
    ----------
    predictor : object
    read_threads : int
        Reader processes; fewer than 2 means none.
    initializer, initargs : optional
        Run in each reader as it starts, as ``ProcessPoolExecutor`` does;
        forked readers inherit ``initargs`` as they are, unpickled (a whole
        predictor costs nothing to hand over).

    Yields
    ------
    concurrent.futures.ProcessPoolExecutor or None
    """
    # Linux only: macOS offers fork, but its system libraries are not safe in a forked child.
    usable = (getattr(predictor, "load_many", None) is not None and read_threads > 1
              and sys.platform.startswith("linux") and not multiprocessing.current_process().daemon)
    if not usable:
        yield None
        return
    from threadpoolctl import threadpool_limits

    # The readers take the other cores: a BLAS pool of several threads in this process would only
    # spin against them (per-file spectra, 2 cores: 1.6 -> 1.3 CPU ms per spectrum here).
    with ProcessPoolExecutor(read_threads, mp_context=multiprocessing.get_context("fork"), initializer=initializer,
                             initargs=initargs) as pool, \
            threadpool_limits(limits=1, user_api="blas"):
        yield pool


def _load_in_chunks(load_many, refs, scratch, read_threads, processes):
    """:func:`load_partition`'s ``(item, reason)`` pairs by ``load_many``, in reader processes where given."""
    loaded, paths, todo = [None] * len(refs), [], []
    for i, ref in enumerate(refs):
        try:
            paths.append(_local_path(ref, Path(scratch) / str(i)))
            todo.append(i)
        except Exception as exc:  # noqa: BLE001 - see _reason
            loaded[i] = (None, _reason(exc, ref.path, ref.name))
    workers = max(1, read_threads)
    size = max(1, min(CHUNK_SIZE, -(-len(todo) // workers)))
    chunks = [(todo[k:k + size], paths[k:k + size]) for k in range(0, len(todo), size)]

    def read(pool, chunk):
        return pool.submit(_load_chunk, load_many, chunk[1], [refs[i].name for i in chunk[0]])

    use_processes = processes is not None and len(todo) >= MIN_INPUTS_FOR_PROCESSES
    if use_processes:
        # Here, before the readers fork on the first submit: what load_many
        # imports (astropy, ~0.4 s) is then imported once, not in every reader.
        load_many([])
    with ThreadPoolExecutor(max_workers=workers) as threads:
        futures = []
        for chunk in chunks:
            try:
                futures.append(read(processes if use_processes else threads, chunk))
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
    return loaded


def load_partition(predictor, refs, read_threads=2, processes=None):
    """Decode one partition's inputs, setting bad ones aside.

    Parameters
    ----------
    predictor : object
        Has ``load_input(path)``, and maybe ``load_many`` (module docstring).
    refs : list of InputRef
    read_threads : int
        Decoding threads (image and FITS decoders release the GIL).
    processes : concurrent.futures.ProcessPoolExecutor, optional
        From :func:`reader_processes`: reads a large partition of a
        predictor with ``load_many``; threads read it otherwise.

    Returns
    -------
    names : list of str
        Names of the good inputs, in input order.
    items : list
        Their model inputs.
    failures : list of (str, str)
        ``(name, reason)`` for every bad input.
    """
    load_many = getattr(predictor, "load_many", None)
    with tempfile.TemporaryDirectory(prefix="deepscope-") as scratch:
        if load_many is not None:
            loaded = _load_in_chunks(load_many, refs, scratch, read_threads, processes)
        else:
            with ThreadPoolExecutor(max_workers=max(1, read_threads)) as pool:
                loaded = list(pool.map(lambda i: _load_one(predictor, refs[i], Path(scratch) / str(i)),
                                       range(len(refs))))
    names, items, failures = [], [], []
    for ref, (item, error) in zip(refs, loaded):
        if error is None:
            names.append(ref.name)
            items.append(item)
        else:
            failures.append((ref.name, error))
    return names, items, failures
