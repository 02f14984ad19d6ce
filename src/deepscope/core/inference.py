"""Batched inference over a stream of inputs, in process or on a Dask cluster.

Every batch command (galaxy predict, spectra predict, cryo-EM pick) hands a
*predictor* to :func:`run_partitioned`: any picklable object with

- ``load_input(path)``: read one file into a model input (raising a
  :class:`~deepscope.errors.DeepscopeError` for a bad file), and
- ``rows(items)``: predict on a list of model inputs, one dict per input;

optionally, for inputs whose decoding is Python that holds the GIL (FITS
headers) or that are cheaper read together:

- ``load_many``: a picklable callable, ``paths -> list`` of the model input
  or the exception of each path (``load_many([])`` imports its decoders);
  a partition is then read in chunks, in reader processes when it is large
  and ``read_threads`` > 1;

and optionally, for a predictor that writes files of its own (cryo-EM STAR
files, overlays):

- ``output_files(rows)``: the files it wrote for those rows, whose
  checksums are recorded with the partition (a partition whose files are
  later missing or altered is computed again), and
- ``output_suffixes``: the suffixes of those files, so that an output
  directory the inputs would be collected from is refused before any work.

Inputs are cut into numbered partitions. In process, the next partition is
decoded on a thread pool (or reader processes, see ``load_many``) while the
network runs on this one. On Dask the
predictor is shipped once to every worker (scattered, not re-sent with each
task) and a bounded number of partitions is in flight, so memory stays flat
however long the input stream. Both paths run the same partitions through
the same batches, so they write the same numbers. Finished partitions go to
a :class:`~deepscope.core.parts.PartStore`, which makes runs resumable.
"""

import logging

from deepscope.core.cluster import dask_client
from deepscope.core.partition_loops import run_jobs_locally, run_jobs_on_dask
from deepscope.core.partition_reading import load_partition, reader_processes
from deepscope.core.parts import STORE_SUFFIXES, PartStore
from deepscope.core.sources import partition_identity, partitions
from deepscope.errors import BatchError

log = logging.getLogger(__name__)


def predict_partition(predictor, names, items, batch_size):
    """Rows for one decoded partition, ``file`` first.

    Parameters
    ----------
    predictor : object
        Has ``rows(items)``.
    names, items
        The good inputs of :func:`load_partition`.
    batch_size : int

    Returns
    -------
    list of dict
    """
    rows = []
    for start in range(0, len(items), batch_size):
        batch_rows = predictor.rows(items[start:start + batch_size])
        rows += [{"file": name, **row} for name, row in zip(names[start:start + batch_size], batch_rows)]
    return rows


def run_partition(predictor, refs, batch_size, read_threads=2, threads=None):
    """Load and predict one partition: the unit of work a Dask worker runs.

    Parameters
    ----------
    predictor : object
    refs : list of InputRef
    batch_size, read_threads : int
    threads : int, optional
        torch threads; by default the Dask worker's thread count.

    Returns
    -------
    rows : list of dict
    failures : list of (str, str)
    """
    import torch

    if threads is None:
        from distributed import get_worker

        # A worker process should use the cores it was given, not all of the machine's.
        threads = get_worker().state.nthreads
    torch.set_num_threads(threads)
    names, items, failures = load_partition(predictor, refs, read_threads)
    return predict_partition(predictor, names, items, batch_size), failures


def run_partitioned(stream, predictor, store, partition_size, batch_size, read_threads=2, client=None,
                    progress=True, desc="predict"):
    """Run a predictor over a stream of inputs, partition by partition.

    Parameters
    ----------
    stream : iterable of InputRef
        With a ``total`` attribute (or None) for the progress bar.
    predictor : object
        See the module docstring.
    store : PartStore
        Receives each finished partition; its done partitions are skipped.
    partition_size : int
        Inputs per partition (the unit of resuming and of Dask tasks).
    batch_size : int
        Inputs per forward pass.
    read_threads : int
        Decoding threads per process.
    client : distributed.Client, optional
        Run on this Dask cluster; in process when None.
    progress : bool
        Show a progress bar on stderr.
    desc : str
        Progress bar label.

    Returns
    -------
    int
        Number of partitions computed in this run (done ones not counted).
    """
    from deepscope.core.progress import progress_bar

    done = store.done_indices()
    with progress_bar(enabled=progress, total=getattr(stream, "total", None), desc=desc, unit="file") as bar:
        todo = _todo(stream, partition_size, store, done, bar)
        if client is None:
            return _run_local(todo, predictor, store, batch_size, read_threads, bar)
        return _run_dask(todo, predictor, store, batch_size, read_threads, bar, client)


def _todo(stream, partition_size, store, done, bar):
    """``(index, refs, identity)`` of the partitions to compute; sound done ones only move the bar."""
    for index, refs in enumerate(partitions(stream, partition_size)):
        # Taken before the inputs are read: an input changed while its
        # partition runs makes the next run compute it again.
        identity = partition_identity(refs)
        if index in done:
            reason = store.verify(index, identity, len(refs))
            if reason is None:
                bar.update(len(refs))
                continue
            log.warning("%s: computing partition %d again: %s", store.part_path(index), index, reason)
        yield index, refs, identity


def _output_files(predictor, rows):
    """Files a predictor wrote for ``rows`` (none for one that only returns rows)."""
    output_files = getattr(predictor, "output_files", None)
    return list(output_files(rows)) if output_files is not None else []


def _run_local(todo, predictor, store, batch_size, read_threads, bar):
    def finish(job, loaded):
        index, refs, identity = job
        names, items, failures = loaded
        rows = predict_partition(predictor, names, items, batch_size)
        store.write(index, rows, failures, identity, _output_files(predictor, rows))
        bar.update(len(refs))

    with reader_processes(predictor, read_threads) as processes:
        return run_jobs_locally(todo, lambda job: load_partition(predictor, job[1], read_threads, processes), finish)


def _run_dask(todo, predictor, store, batch_size, read_threads, bar, client):
    def submit(remote, job):
        return client.submit(run_partition, remote, job[1], batch_size, read_threads, pure=False)

    def finish(job, result):
        index, refs, identity = job
        rows, failures = result
        store.write(index, rows, failures, identity, _output_files(predictor, rows))
        bar.update(len(refs))

    return run_jobs_on_dask(client, predictor, todo, submit, finish)


def describe_job(command, stream, model_path, partition_size, **options):
    """Plain data that identifies a batch job, for resuming it.

    Parameters
    ----------
    command : str
        E.g. ``"galaxy predict"``.
    stream : InputStream
    model_path : Path or None
        The checkpoint or run directory (identified by the checkpoint's
        SHA-256, not its path); None for a model built in memory.
    partition_size : int
    **options
        Anything else that changes the results (thresholds ...).

    Returns
    -------
    dict
    """
    import hashlib
    import json

    from deepscope.core.checkpoint import resolve_checkpoint, sha256

    inputs = json.dumps(stream.describe(), sort_keys=True)
    return {
        "command": command,
        # Hashed: a list of a million paths has no place in a small JSON file.
        "inputs_sha256": hashlib.sha256(inputs.encode()).hexdigest(),
        "model_sha256": None if model_path is None else sha256(resolve_checkpoint(model_path)),
        "partition_size": partition_size,
        "options": options,
    }


def run_batch(stream, predictor, store, options, desc="predict"):
    """Run a batch job to the end on the requested cluster; collect its failures.

    Parameters
    ----------
    stream : InputStream
    predictor : object
    store : PartStore
    options : BatchOptions
        Partition and batch sizes, read threads and the cluster
        (``workers`` or ``scheduler``, see :func:`~deepscope.core.cluster.dask_client`).
    desc : str
        Progress bar label.

    Returns
    -------
    list of (str, str)
        Every bad input (and unreadable tar shard) of the whole job,
        including partitions finished by an earlier, interrupted run. The
        caller then calls ``store.finish()``.

    Raises
    ------
    OutputError
        Before any work, if the store's output is also an input or would
        be read back as one (see :meth:`InputStream.check_output`).
    """
    try:
        _check_output(stream, store.output, predictor)
        with dask_client(options.workers, options.scheduler) as client:
            run_partitioned(stream, predictor, store, options.partition_size, options.batch_size,
                            options.read_threads, client, options.progress, desc)
        return stream.failures + store.failures()
    except BaseException:
        # Interrupted or failed: the parts stay for a rerun, the output is
        # free for it.
        store.close()
        raise


def _check_output(stream, output, predictor=None):
    written = STORE_SUFFIXES + tuple(getattr(predictor, "output_suffixes", ()))
    stream.check_output(output, written)


def predict_to_table(stream, predictor, out, job, options, desc="predict"):
    """What a predict command runs: rows into a table or a directory of parts.

    Parameters
    ----------
    stream : InputStream
    predictor : object
    out : str or Path
        ``.csv`` or ``.parquet`` table, or a directory for Parquet parts
        (see :meth:`PartStore.for_table`).
    job : dict
        From :func:`describe_job`: a rerun of the same job resumes.
    options : BatchOptions
    desc : str
        Progress bar label.

    Returns
    -------
    int
        Number of rows written; nothing is written when no input could be read.

    Raises
    ------
    BatchError
        After writing the good rows, if some inputs could not be read.
    """
    # Before the store exists: --catalog lab.csv --out lab.csv leaves nothing behind.
    _check_output(stream, out, predictor)
    store = PartStore.for_table(out, job)
    failures = run_batch(stream, predictor, store, options, desc)
    return finish_table(store, failures)


def finish_table(store, failures) -> int:
    """Gather a finished job's parts into its output, then report its bad inputs.

    Parameters
    ----------
    store : PartStore
        Every partition of the job written.
    failures : list of (str, str)
        ``(name, reason)`` of every bad input of the whole job.

    Returns
    -------
    int
        Rows gathered into the output.

    Raises
    ------
    BatchError
        Naming every bad input, once the output is complete.
    """
    count = store.finish()
    if count:
        log.info("wrote %d rows to %s", count, store.output)
    if failures:
        raise BatchError(failures)
    return count
