"""The one batch runner: partitions of a source, answered by a predictor, written to a part store.

Every batch command (galaxy predict, spectra predict on files or bulk
tables, cryo-EM pick) builds a source and a predictor and calls
:func:`predict_to_table`, or :func:`run_batch` with a store of its own. In
process, the next partitions are read on a thread (or in forked reader
processes) while the network answers this one. On Dask the predictor is
shipped once to every worker and a bounded number of partitions is in
flight, so memory stays flat however long the input. Both paths answer the
same partitions in the same batches, so they write the same rows. Each
finished partition goes to a :class:`~deepscope.core.batch.store.PartStore`,
so a killed run resumes; :func:`describe_job` says which parts it may keep.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from deepscope.core.batch import reading
from deepscope.core.batch.store import STORE_SUFFIXES, PartStore
from deepscope.core.cluster import dask_client
from deepscope.errors import BatchError, DeepscopeError

log = logging.getLogger(__name__)


class Predictor(Protocol):
    """What the runner calls on a predictor (galaxy, spectra and cryo-EM each have one).

    Optional members, found with ``getattr``: ``load_many``, a picklable
    callable ``paths -> list`` of the model input or the exception of each
    path (a partition is then read in chunks, in forked reader processes
    when it is large); ``output_files(rows)``, the files written for those
    rows (their checksums are recorded with the partition, which is
    computed again when one is later missing or altered); and
    ``output_suffixes``, the suffixes of those files (an output directory
    the inputs would be collected from is refused before any work).
    """

    engine: str  # what runs the network: "torch", "onnx" or "onnx-int8"
    output_columns: Sequence[str]  # the keys of every row of rows(), in order

    def load_input(self, path: Path) -> Any:
        """One input file as a model input; a bad one raises a DeepscopeError naming it."""

    def rows(self, items: Sequence) -> list[dict]:
        """One row per model input of a batch."""


class Source(Protocol):
    """What the runner asks of a source (:class:`~deepscope.core.batch.sources.InputStream`, ...).

    Its partitions have ``index``, ``identity`` (compared with a finished
    part's on resuming), ``count`` (inputs) and
    ``load(predictor, read_threads, processes=None)``, which returns a
    :class:`~deepscope.core.batch.reading.Loaded`; they are pickled to Dask
    workers, so they hold what loading needs and no more.
    """

    unit: str  # what one input is, for the progress bar
    total: int | None  # number of inputs, when known before reading them
    failures: list  # (name, reason) of inputs lost outside any partition (unreadable tar shards)
    columns: list  # columns every row carries after the predictor's (catalogue columns ...)
    carry_prefix: str  # put before a carried column named like an output column
    one_reader_per_partition: bool  # a reader process reads a whole partition, or a share of each

    def describe(self) -> dict:
        """Plain data identifying the inputs."""

    def check_output(self, output, written_suffixes=()) -> None:
        """Refuse (OutputError) an output that is an input, or that a rerun would read as one."""

    def partitions(self, size: int) -> Iterator:
        """Partitions of ``size`` inputs, numbered from 0, identified before they are read."""


def device_kind(device: str = "cpu") -> str:
    """The kind of processor a network runs on: the CUDA device, or the CPU's architecture and model.

    CUDA and the CPU give slightly different numbers, and int8 kernels
    differ between kinds of CPU.

    >>> device_kind().startswith("cpu ")
    True
    """
    import platform

    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        model = platform.processor()
    return " ".join(filter(None, [device.type, platform.machine(), model]))


def _carried_name(name, outputs, prefix):
    """A carried column's name in the output: prefixed where it would overwrite an output column."""
    return prefix + name if name == "file" or name in outputs else name


def describe_job(command, source, predictor, model_path, options, **settings) -> dict:
    """Plain data that identifies a batch job: a rerun of the same job resumes, any other starts afresh.

    Parameters
    ----------
    command : str
        E.g. ``"galaxy predict"``.
    source : Source
    predictor : Predictor
    model_path : Path or None
        The checkpoint or run directory (identified by the checkpoint's
        SHA-256, not its path); None for a model built in memory.
    options : BatchOptions
    **settings
        Anything else that changes the rows (thresholds, views, row filters ...).

    Returns
    -------
    dict
        ``command``, ``inputs_sha256`` (of ``source.describe()``),
        ``model_sha256``, ``engine`` (what runs the network), ``device``
        (:func:`device_kind`), ``columns`` (the output's, in order),
        ``partition_size`` and ``options`` (the settings).
    """
    from deepscope.core.checkpoint import resolve_checkpoint, sha256

    inputs = json.dumps(source.describe(), sort_keys=True)
    outputs = list(predictor.output_columns)
    return {
        "command": command,
        # Hashed: a list of a million paths has no place in a small JSON file.
        "inputs_sha256": hashlib.sha256(inputs.encode()).hexdigest(),
        "model_sha256": None if model_path is None else sha256(resolve_checkpoint(model_path)),
        "engine": predictor.engine,
        "device": device_kind(options.device),
        "columns": ["file", *outputs, *(_carried_name(c, outputs, source.carry_prefix) for c in source.columns)],
        "partition_size": options.partition_size,
        "options": settings,
    }


def partition_rows(predictor, loaded, batch_size, carry_prefix="") -> list[dict]:
    """The rows of a partition read (a :class:`~deepscope.core.batch.reading.Loaded`), answered
    ``batch_size`` inputs at a time: ``file``, the predictor's columns, then the carried ones."""
    carried = loaded.carried or [{}] * len(loaded.names)
    rows = []
    for start in range(0, len(loaded.names), batch_size):
        stop = start + batch_size
        for name, row, extra in zip(loaded.names[start:stop], predictor.rows(loaded.items[start:stop]),
                                    carried[start:stop]):
            rows.append({"file": name, **row, **{_carried_name(k, row, carry_prefix): v for k, v in extra.items()}})
    return rows


def run_partition(predictor, part, batch_size, read_threads, carry_prefix):
    """The task a Dask worker runs: one partition read and answered, on the worker's threads.

    Returns its rows and its failures.
    """
    import torch
    from distributed import get_worker

    # A worker process should use the cores it was given, not all of the machine's.
    torch.set_num_threads(get_worker().state.nthreads)
    loaded = part.load(predictor, read_threads)
    return partition_rows(predictor, loaded, batch_size, carry_prefix), loaded.failures


def _todo(source, store, partition_size, bar):
    """The partitions to compute; sound done ones only move the bar."""
    done = store.done_indices()
    for part in source.partitions(partition_size):
        if part.index in done:
            reason = store.verify(part.index, part.identity, part.count)
            if reason is None:
                bar.update(part.count)
                continue
            log.warning("%s: computing partition %d again: %s", store.part_path(part.index), part.index, reason)
        yield part


def _run_local(todo, source, predictor, options, finish):
    least = reading.MIN_INPUTS_FOR_PROCESSES
    wanted = options.partition_size >= least and (source.total is None or source.total >= least)
    with reading.reader_processes(predictor, options.read_threads, wanted) as processes:
        depth = options.read_threads if processes is not None and source.one_reader_per_partition else 1
        loading = deque()
        with ThreadPoolExecutor(max_workers=depth) as prefetcher:

            def start_next():
                part = next(todo, None)
                if part is not None:
                    loading.append((part, prefetcher.submit(part.load, predictor, options.read_threads, processes)))

            for _ in range(depth):
                start_next()
            while loading:
                part, loaded = loading.popleft()
                start_next()  # read the next partitions while the network answers this one
                loaded = loaded.result()
                rows = partition_rows(predictor, loaded, options.batch_size, source.carry_prefix)
                finish(part, rows, loaded.failures)


def _run_dask(client, todo, source, predictor, options, finish):
    from distributed import as_completed

    # Scattered once with broadcast: each worker holds one copy of the
    # model, instead of deserialising it again with every task.
    remote = client.scatter(predictor, broadcast=True, hash=False)
    running, parts = as_completed(), {}

    def submit_next():
        part = next(todo, None)
        if part is not None:
            future = client.submit(run_partition, remote, part, options.batch_size, options.read_threads,
                                   source.carry_prefix, pure=False)
            parts[future.key] = part
            running.add(future)

    # Two partitions per worker in flight: one running, one queued; more
    # would only hold decoded inputs in memory.
    for _ in range(2 * max(1, len(client.nthreads()))):
        submit_next()
    for future in running:
        part = parts.pop(future.key)
        try:
            rows, failures = future.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker or task is reported, finished parts stay
            msg = (f"partition {part.index} failed on the Dask cluster ({type(exc).__name__}: {exc}); "
                   "finished partitions are kept: rerun the same command to resume")
            raise DeepscopeError(msg) from None
        finish(part, rows, failures)
        future.release()
        submit_next()


def run_batch(source, predictor, store, options, desc="predict", keep: Callable[[dict], bool] | None = None):
    """Run a batch job to the end, in process or on the requested Dask cluster.

    Parameters
    ----------
    source : Source
    predictor : Predictor
    store : PartStore
        Receives each finished partition; its sound done ones are skipped.
    options : BatchOptions
    desc : str
        Progress bar label.
    keep : callable, optional
        Row filter, ``row -> bool``, applied as each partition is written.

    Returns
    -------
    list of (str, str)
        Every bad input of the job, with those of partitions finished by an
        earlier run; the caller then calls ``store.finish()``.

    Raises
    ------
    OutputError
        Before any work, if the output is an input or would be read back as one.
    DeepscopeError
        If a Dask task fails (the finished partitions are kept).
    """
    from deepscope.core.progress import progress_bar

    def finish(part, rows, failures):
        kept = rows if keep is None else [row for row in rows if keep(row)]
        written = getattr(predictor, "output_files", None)
        store.write(part.index, kept, failures, part.identity, written(rows) if written else (), len(rows) - len(kept))
        bar.update(part.count)

    try:
        _check_output(source, store.output, predictor)
        with dask_client(options.workers, options.scheduler) as client, \
                progress_bar(enabled=options.progress, total=source.total, desc=desc, unit=source.unit) as bar:
            todo = _todo(source, store, options.partition_size, bar)
            if client is None:
                _run_local(todo, source, predictor, options, finish)
            else:
                _run_dask(client, todo, source, predictor, options, finish)
        return source.failures + store.failures()
    except BaseException:
        # Interrupted or failed: the parts stay for a rerun, the output is free for it.
        store.close()
        raise


def _check_output(source, output, predictor):
    source.check_output(output, STORE_SUFFIXES + tuple(getattr(predictor, "output_suffixes", ())))


def predict_to_table(source, predictor, out, job, options, desc="predict", keep=None) -> int:
    """What a predict command runs: rows into a ``.csv`` or ``.parquet`` table, or a directory of parts.

    Parameters
    ----------
    source, predictor, options, desc, keep
        As :func:`run_batch` takes them.
    out : str or Path
        See :meth:`PartStore.for_table`.
    job : dict
        From :func:`describe_job`: a rerun of the same job resumes.

    Returns
    -------
    int
        Rows written; nothing is written when no input could be read.

    Raises
    ------
    BatchError
        After writing the good rows, naming every bad input.
    """
    # Before the store exists: --catalog lab.csv --out lab.csv leaves nothing behind.
    _check_output(source, out, predictor)
    store = PartStore.for_table(out, job)
    failures = run_batch(source, predictor, store, options, desc, keep)
    count = store.finish()
    if count:
        log.info("wrote %d rows to %s", count, store.output)
    if failures:
        raise BatchError(failures)
    return count
