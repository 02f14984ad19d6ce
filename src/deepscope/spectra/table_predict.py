"""``spectra predict`` on bulk tables: row slices as partitions, resumable, in process or on Dask.

A table of a million spectra is one file holding a million inputs, so the
file-by-file stream of :mod:`deepscope.core.sources` does not fit it: here a
partition is a slice of rows. The finished partitions go to the same
:class:`~deepscope.core.parts.PartStore` as every other batch command (so a
killed run resumes, and ``--out DIR`` keeps the Parquet parts), and the rows
come out exactly as per-file prediction writes them, ``file`` being
``TABLE#row`` (or the ``--id-column`` value), followed by the table's own
one-value-per-row columns (ids, coordinates ...). In process, slices are
read, gridded, normalised and scored for their flags in forked reader
processes, one slice each, while this process runs the network and
writes; a reader that dies costs nothing but its slice being read here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from deepscope.errors import OutputError
from deepscope.spectra.io.table_rows import TableLayout, read_rows, resolve_columns
from deepscope.spectra.io.tables import open_table

log = logging.getLogger(__name__)


def slice_identity(path: str | Path, start: int, stop: int) -> str:
    """A digest of a row slice and its table's size and modification time (a replaced table is new work)."""
    try:
        stat = os.stat(path)
        state = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        state = None
    return hashlib.sha256(repr((str(Path(path).resolve()), state, start, stop)).encode()).hexdigest()


def predict_slice(predictor, table, start: int, stop: int, layout: TableLayout, found: dict, batch_size: int,
                  read_threads: int = 2) -> tuple:
    """Rows and failures of one slice of a bulk table: the unit of work.

    Parameters
    ----------
    predictor : SpectraPredictor
    table : ParquetTable, FitsTable, str or Path
        An open table, or its path (opened here, as on a Dask worker).
    start, stop : int
    layout : TableLayout
    found : dict
        From :func:`~deepscope.spectra.io.tables.resolve_columns`.
    batch_size : int
    read_threads : int
        Threads putting the spectra on the model's grid.

    Returns
    -------
    rows : list of dict
    failures : list of (str, str)
    """
    prepared = prepare_slice(predictor, table, start, stop, layout, found, read_threads)
    return classify_prepared(predictor, *_with_features(predictor, prepared), batch_size)


def prepare_slice(predictor, table, start, stop, layout, found, read_threads=2):
    """Read a slice and put every good row on the model's grid: ``(names, items, carried, failures)``."""
    if not hasattr(table, "read"):
        opened = open_table(table)
        try:
            return prepare_slice(predictor, opened, start, stop, layout, found, read_threads)
        finally:
            opened.close()
    names, spectra, carried, failures = read_rows(table, start, stop, layout, found)
    # Rows depend on their own data only, so the slice is cut into one chunk per thread (numpy
    # releases the GIL in the array operations) without changing a number.
    size = max(1, -(-len(spectra) // max(1, read_threads)))
    starts = range(0, len(spectra), size)
    with ThreadPoolExecutor(max_workers=max(1, read_threads)) as pool:
        prepared = list(pool.map(lambda lo: predictor.prepare_many(spectra[lo:lo + size], names[lo:lo + size]),
                                 starts))
    good, items = [], []
    for lo, (chunk_good, chunk_items, chunk_failures) in zip(starts, prepared):
        good += [lo + i for i in chunk_good]
        items += chunk_items
        failures += chunk_failures
    return [names[i] for i in good], items or None, [carried[i] for i in good], failures


def _with_features(predictor, prepared):
    """A :func:`prepare_slice` result with its items made ready for the network: all but the network.

    Returns ``(names, features, carried, failures)``; ``features`` is None
    when the slice has no good row.
    """
    names, items, carried, failures = prepared
    return names, None if items is None else predictor.features(items), carried, failures


def classify_prepared(predictor, names, features, carried, failures, batch_size):
    """Prediction rows for a slice made ready (:meth:`~deepscope.spectra.predictor.SpectraPredictor.features`):
    ``file``, the type columns, confidence and flag, then the carried columns."""
    from deepscope.spectra.decoding import OUTPUT_COLUMNS
    from deepscope.spectra.predictor import ASSESSMENT_COLUMNS

    if features is None:
        return [], failures
    taken = {"file", *OUTPUT_COLUMNS, *ASSESSMENT_COLUMNS}
    rows = []
    for name, prediction, extra in zip(names, predictor.assess_features(features, batch_size), carried):
        # A table's own 'sptype' (say, a catalogue type) must not overwrite the prediction.
        rows.append({"file": name, **prediction,
                     **{(f"input_{key}" if key in taken else key): value for key, value in extra.items()}})
    return rows, failures


# In a reader process: the predictor it works for (inherited when it forked, see _run_local) and
# the tables it has open, kept open so that consecutive slices of one row group read it once.
_reader_predictor = None
_reader_tables = {}


def _adopt(predictor):
    """Reader process initializer: remember the (inherited, not pickled) predictor."""
    global _reader_predictor
    _reader_predictor = predictor


def _featurise_slice(path, start, stop, layout, found):
    """In a reader process: a slice read, gridded, normalised and scored for its flags.

    Returns ``(names, features, carried, failures)``: all but the network,
    which stays in the parent (on a GPU it is the one step the GPU takes).
    """
    table = _reader_tables.get(path)
    if table is None:
        table = _reader_tables[path] = open_table(path)
    return _with_features(_reader_predictor, prepare_slice(_reader_predictor, table, start, stop, layout, found, 1))


def _slices(tables, partition_size):
    """``(index, table number, start, stop)`` of every partition, tables one after another."""
    index = 0
    for number, table in enumerate(tables):
        for start in range(0, table.n_rows, partition_size):
            yield index, number, start, min(start + partition_size, table.n_rows)
            index += 1


def predict_tables(tables, out: str | Path, model: str | Path | None = None, options=None,
                   layout: TableLayout = TableLayout()) -> int:
    """Classify every row of bulk spectrum tables; one output row per good row.

    Parameters
    ----------
    tables : sequence of str or Path
        Parquet or FITS binary tables, one spectrum per row.
    out : str or Path
        ``.csv`` or ``.parquet``, or a directory to receive Parquet parts.
    model : str or Path, optional
        Shipped name, checkpoint or run directory; the shipped model by default.
    options : BatchOptions, optional
        ``partition_size`` counts rows.
    layout : TableLayout
        Column names, medium and id column.

    Returns
    -------
    int
        Number of rows written: the good rows of every table.

    Raises
    ------
    InputError
        Before any work, if a named column is missing.
    OutputError
        If the output is one of the tables.
    BatchError
        After writing the good rows, naming every bad row (``TABLE#row: reason``).
    """
    from deepscope.core.options import BatchOptions
    from deepscope.spectra.predictor import PARTITION_SIZE

    options = options or BatchOptions(partition_size=PARTITION_SIZE)
    options.check()
    for path in tables:
        if os.path.realpath(path) == os.path.realpath(out):
            msg = f"{out}: the output is also an input of this run; write it elsewhere"
            raise OutputError(msg)
    readers = []
    try:
        for path in tables:
            readers.append(open_table(path))
        return _predict_open_tables(readers, out, model, options, layout)
    finally:
        for reader in readers:
            reader.close()


def _predict_open_tables(readers, out, model, options, layout):
    from deepscope.core.cluster import dask_client
    from deepscope.core.inference import finish_table
    from deepscope.core.parts import PartStore
    from deepscope.registry import resolve_model
    from deepscope.core.distributed import set_torch_threads
    from deepscope.spectra.predictor import SpectraPredictor

    tables = [reader.path for reader in readers]
    found = [resolve_columns(reader, layout) for reader in readers]
    set_torch_threads(options.threads)
    model_path = resolve_model(model, "spectra")
    predictor = SpectraPredictor.from_checkpoint(model_path, options.device, options.engine)
    store = PartStore.for_table(out, _describe(tables, model_path, options.partition_size, layout))
    try:
        todo = _todo(readers, store, options.partition_size)
        with dask_client(options.workers, options.scheduler) as client:
            if client is None:
                _run_local(todo, predictor, readers, layout, found, store, options)
            else:
                _run_dask(todo, predictor, readers, layout, found, store, options, client)
        failures = store.failures()
    except BaseException:
        store.close()  # the parts stay for a rerun
        raise
    return finish_table(store, failures)


def _describe(tables, model_path, partition_size, layout):
    from deepscope.core.checkpoint import resolve_checkpoint, sha256

    return {"command": "spectra predict (tables)",
            "inputs": [str(Path(p).resolve()) for p in tables],
            "model_sha256": sha256(resolve_checkpoint(model_path)),
            "partition_size": partition_size,
            "options": {"columns": [layout.columns.wave, layout.columns.flux, layout.columns.ivar],
                        "medium": layout.medium, "id_column": layout.id_column}}


def _todo(readers, store, partition_size):
    """The slices still to compute; sound finished ones are skipped."""
    done = store.done_indices()
    for index, number, start, stop in _slices(readers, partition_size):
        identity = slice_identity(readers[number].path, start, stop)
        if index in done:
            reason = store.verify(index, identity, stop - start)
            if reason is None:
                continue
            log.warning("%s: computing partition %d again: %s", store.part_path(index), index, reason)
        yield index, number, start, stop, identity


def _run_local(todo, predictor, readers, layout, found, store, options):
    from deepscope.core.partition_loops import run_jobs_locally
    from deepscope.core.partition_reading import MIN_INPUTS_FOR_PROCESSES, reader_processes
    from deepscope.core.progress import progress_bar

    in_process = threading.Lock()  # the parent's open tables keep one row group: one slice at a time

    def load_here(job):
        _, number, lo, hi, _ = job
        with in_process:
            prepared = prepare_slice(predictor, readers[number], lo, hi, layout, found[number], options.read_threads)
        return _with_features(predictor, prepared)

    total = sum(reader.n_rows for reader in readers)
    # Reading, gridding, normalising and the template distances hold the GIL for much of their
    # time, so each reader process takes whole slices, as many in flight as there are readers,
    # and this process only runs the network and writes.
    with reader_processes(predictor, options.read_threads, _adopt, (predictor,)) as processes, \
            progress_bar(enabled=options.progress, total=total, desc="classify", unit="spectrum") as bar:

        def load(job):
            _, number, lo, hi, _ = job
            if processes is None or hi - lo < MIN_INPUTS_FOR_PROCESSES:
                return load_here(job)
            try:
                return processes.submit(_featurise_slice, str(readers[number].path), lo, hi, layout,
                                        found[number]).result()
            except BrokenProcessPool:
                log.warning("reader processes stopped; reading rows %d-%d of %s in this process",
                            lo, hi, readers[number].path)
                return load_here(job)

        def finish(job, prepared):
            index, _, lo, hi, identity = job
            rows, failures = classify_prepared(predictor, *prepared, options.batch_size)
            store.write(index, rows, failures, identity)
            bar.update(hi - lo)

        run_jobs_locally(todo, load, finish, prefetch=options.read_threads if processes is not None else 1)


def _run_dask(todo, predictor, readers, layout, found, store, options, client):
    from deepscope.core.partition_loops import run_jobs_on_dask

    def submit(remote, job):
        _, number, lo, hi, _ = job
        return client.submit(_worker_slice, remote, str(readers[number].path), lo, hi, layout, found[number],
                             options.batch_size, options.read_threads, pure=False)

    def finish(job, result):
        index, _, _, _, identity = job
        rows, failures = result
        store.write(index, rows, failures, identity)

    run_jobs_on_dask(client, predictor, todo, submit, finish)


def _worker_slice(predictor, path, start, stop, layout, found, batch_size, read_threads):
    """:func:`predict_slice` on a Dask worker, with the worker's own thread count."""
    import torch
    from distributed import get_worker

    torch.set_num_threads(get_worker().state.nthreads)
    return predict_slice(predictor, path, start, stop, layout, found, batch_size, read_threads)
