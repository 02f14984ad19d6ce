"""Bulk spectrum tables as a batch source: row slices as partitions.

A table of a million spectra is one file holding a million inputs, so here
a partition is a slice of rows (:class:`SlicePartition`), run by the batch
runner of :mod:`deepscope.core.batch.runner` as every other input is:
resumable, in process or on Dask. The rows come out exactly as per-file
prediction writes them, ``file`` being ``TABLE#row`` (or the
``--id-column`` value), followed by the table's own one-value-per-row
columns (ids, coordinates ...). In process, large slices are read, gridded,
normalised and scored for their flags in forked reader processes, a whole
slice each, while this process runs the network and writes; a reader that
dies costs nothing but its slice being read here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from deepscope.core.batch import reading
from deepscope.errors import OutputError
from deepscope.spectra.io.table_rows import TableLayout, read_rows, resolve_columns
from deepscope.spectra.io.tables import open_table

log = logging.getLogger(__name__)

# Tables open in this process, by process, thread, path and (size, mtime): consecutive slices of one
# row group then read it once, each thread reads its own, and a forked reader opens its own.
_open = {}


def _table(path, stamp):
    key = (os.getpid(), threading.get_ident(), path, stamp)
    if key not in _open:
        _open[key] = open_table(path)
    return _open[key]


def prepare_slice(predictor, table, start, stop, layout, found, read_threads=2):
    """Read rows ``start:stop`` and put every good one on the model's grid: ``(names, items, carried, failures)``."""
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
    return [names[i] for i in good], items, [carried[i] for i in good], failures


class _FeatureRows:
    """The rows of a :class:`~deepscope.spectra.flags.SpectrumFeatures`, sliced as a list is."""

    def __init__(self, features):
        self.features = features

    def __len__(self):
        return len(self.features.x)

    def __getitem__(self, rows):
        return type(self.features)(*(column[rows] for column in self.features))


@dataclass(frozen=True)
class SlicePartition:
    """Rows ``start:stop`` of a bulk table: partition ``index`` of a :class:`TableSource`."""

    index: int
    identity: str  # the table's resolved path, size and modification time, and the rows
    path: str
    stamp: tuple | None  # the table's size and modification time
    start: int
    stop: int
    layout: TableLayout
    found: dict  # resolve_columns(table, layout)

    @property
    def count(self) -> int:
        """Number of rows."""
        return self.stop - self.start

    def load(self, predictor, read_threads, processes=None) -> reading.Loaded:
        """The slice read, gridded, normalised and scored for its flags: all but the network.

        A large slice goes whole to one of ``processes``; the network stays
        in the parent (on a GPU it is the one step the GPU takes).
        """
        if processes is not None and self.count >= reading.MIN_INPUTS_FOR_PROCESSES:
            try:
                return processes.submit(_load_in_reader, self).result()
            except BrokenProcessPool:
                log.warning("reader processes stopped; reading rows %d-%d of %s in this process",
                            self.start, self.stop, self.path)
        names, items, carried, failures = prepare_slice(predictor, _table(self.path, self.stamp), self.start,
                                                        self.stop, self.layout, self.found, read_threads)
        return reading.Loaded(names, _FeatureRows(predictor.features(items)) if items else [], carried, failures)


def _load_in_reader(part):
    """:meth:`SlicePartition.load` in a reader process, on its one thread."""
    return part.load(reading.inherited_predictor(), 1)


class TableSource:
    """Bulk spectrum tables as a source of :class:`SlicePartition`, one table after another.

    Parameters
    ----------
    paths : sequence of str or Path
        Parquet, FITS or HDF5 tables, one spectrum per row.
    layout : TableLayout
        Column names, medium and id column.

    Raises
    ------
    InputError
        Before any work, if a named column is missing.
    """

    unit = "spectrum"
    carry_prefix = "input_"  # a table's own 'sptype' (a catalogue type) must not overwrite the prediction
    one_reader_per_partition = True  # a reader keeps its tables open: consecutive slices read a row group once

    def __init__(self, paths, layout: TableLayout = TableLayout()):
        self.layout, self.failures, self.tables, self.found = layout, [], [], []
        try:
            for path in map(str, paths):
                stat = os.stat(path) if os.path.exists(path) else None
                stamp = None if stat is None else (stat.st_size, stat.st_mtime_ns)
                table = _table(path, stamp)
                self.found.append(resolve_columns(table, layout))
                self.tables.append((path, stamp, table.n_rows))
        except BaseException:
            self.close()
            raise
        self.total = sum(n_rows for _, _, n_rows in self.tables)
        self.columns = list(dict.fromkeys(name for found in self.found for name in found["carried"]))

    def close(self):
        """Close the tables this process opened."""
        for key in [key for key in _open if key[0] == os.getpid()]:
            _open.pop(key).close()

    def describe(self) -> dict:
        """Plain data identifying the tables and how they are read (for resuming)."""
        columns = self.layout.columns
        return {"tables": [str(Path(path).resolve()) for path, _, _ in self.tables],
                "columns": [columns.wave, columns.flux, columns.ivar], "medium": self.layout.medium,
                "id_column": self.layout.id_column,
                **({"rv_column": self.layout.rv_column} if self.layout.rv_column is not None else {})}

    def check_output(self, output, written_suffixes=()):
        """Refuse an output that is one of the tables (:class:`~deepscope.errors.OutputError`)."""
        for path, _, _ in self.tables:
            if os.path.realpath(path) == os.path.realpath(output):
                msg = f"{output}: the output is also an input of this run; write it elsewhere"
                raise OutputError(msg)

    def partitions(self, size):
        """Slices of ``size`` rows, numbered across the tables."""
        index = 0
        for (path, stamp, n_rows), found in zip(self.tables, self.found):
            resolved = str(Path(path).resolve())
            for start in range(0, n_rows, size):
                stop = min(start + size, n_rows)
                # A table replaced since (another size or modification time) is new work.
                identity = hashlib.sha256(repr((resolved, stamp, start, stop)).encode()).hexdigest()
                yield SlicePartition(index, identity, path, stamp, start, stop, self.layout, found)
                index += 1
