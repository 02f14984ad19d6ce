"""Where batch inputs come from: files, directories, catalogues, tar shards, streamed in partitions.

Survey-scale runs cannot hold a million paths, let alone a million images,
in memory, so inputs are streamed as :class:`InputRef` records: a name for
the output's ``file`` column and where the bytes are. Catalogue tables are
read in chunks and tar shards member by member; nothing but the refs of the
partitions in flight is ever held.

Tar shards are uncompressed ``.tar`` files of cutouts (the WebDataset
convention): a member is read by seeking to its data, so any worker can
fetch any member without scanning the archive.
"""

import contextlib
import hashlib
import itertools
import logging
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from deepscope.core.batch.reading import Loaded, load_partition
from deepscope.core.files import collect_inputs
from deepscope.errors import FormatError, InputError, OutputError

log = logging.getLogger(__name__)

CATALOG_SUFFIXES = (".csv", ".parquet", ".fits", ".fit", ".fits.gz")
TAR_SUFFIX = ".tar"
# Compressed tars are refused by name: reading one member means decompressing
# everything before it, so streaming a shard would cost its whole size per member.
COMPRESSED_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst")
# Catalogue rows read at a time: a few MB of paths whatever the catalogue's length.
CATALOG_CHUNK_ROWS = 65536


@dataclass(frozen=True)
class InputRef:
    """One input of a batch."""

    name: str  # as reported in outputs (``shard.tar/member`` for a tar member)
    path: str  # the file to read: the input itself, or the tar shard holding it
    offset: int = -1  # byte offset of a tar member's data in path; -1 for plain files
    size: int = 0  # size of a tar member's data in bytes

    @property
    def in_tar(self):
        """Whether the bytes live inside a tar shard."""
        return self.offset >= 0

    def read_member(self):
        """The bytes of a tar member."""
        with open(self.path, "rb") as shard:
            shard.seek(self.offset)
            data = shard.read(self.size)
        if len(data) != self.size:
            msg = f"{self.name}: tar shard is truncated ({len(data)} of {self.size} bytes)"
            raise FormatError(msg)
        return data


@dataclass(frozen=True)
class FilePartition:
    """Partition ``index`` of an :class:`InputStream`: its inputs, their identity and the columns their rows carry."""

    index: int
    identity: str  # partition_identity(refs), taken before the inputs are read
    refs: list
    carried: list | None = None  # per input, a dict of catalogue columns (--keep-columns)

    @property
    def count(self) -> int:
        """Number of inputs."""
        return len(self.refs)

    def load(self, predictor, read_threads, processes=None) -> Loaded:
        """Read the inputs (see :func:`~deepscope.core.batch.reading.load_partition`)."""
        return load_partition(predictor, self.refs, read_threads, processes, self.carried)


def _has_suffix(name, suffixes):
    return name.lower().endswith(tuple(suffixes))


def _records(chunk):
    """A pandas chunk as one dict per row, missing values as None."""
    return chunk.astype(object).where(chunk.notna(), None).to_dict("records")


class InputStream:
    """Files, directories, catalogues and tar shards as a source of :class:`FilePartition`.

    Parameters
    ----------
    inputs : sequence of str or Path
        Files, directories (searched recursively for ``suffixes``) and
        uncompressed ``.tar`` shards (their members with ``suffixes``).
    suffixes : sequence of str
        Lower-case input suffixes the domain reads.
    catalog : str or Path, optional
        CSV, Parquet or FITS table listing inputs, one per row.
    path_column : str
        Catalogue column holding the paths; relative paths are taken
        relative to the catalogue's directory.
    keep_columns : bool
        Every row carries the catalogue's columns (:attr:`columns`): a
        catalogue row its own values, other inputs None.
    accept : callable, optional
        ``accept(path) -> bool`` for each file found in a directory: only
        those it accepts are inputs (a domain's check that a file with a
        common suffix, ``labels.csv``, holds what it reads). Files named
        explicitly are always inputs.

    Attributes
    ----------
    failures : list of (str, str)
        Shards that could not be read to the end, with the reason; filled
        while iterating (the other inputs still come through).
    total : int or None
        Number of inputs when known without reading them all (file lists,
        Parquet and FITS catalogues), else None.
    columns : list of str
        The carried catalogue columns (none without ``keep_columns``).

    Raises
    ------
    InputError
        At construction: no inputs, a missing path, an unsupported
        catalogue format or a missing path column.
    """

    unit = "file"
    carry_prefix = "catalog_"  # before a catalogue column named like an output column (its own "file" ...)
    one_reader_per_partition = False  # every reader process reads a share of each partition

    def __init__(self, inputs=(), suffixes=(), catalog=None, path_column="file", keep_columns=False, accept=None):
        inputs = [Path(p) for p in inputs]
        if not inputs and catalog is None:
            msg = "no inputs: give files, directories or tar shards, or --catalog"
            raise InputError(msg)
        self.suffixes = tuple(s.lower() for s in suffixes)
        for path in inputs:
            if path.name.lower().endswith(COMPRESSED_TAR_SUFFIXES):
                msg = f"{path}: compressed shards are not supported; use an uncompressed .tar"
                raise InputError(msg)
        self.shards = [p for p in inputs if p.name.lower().endswith(TAR_SUFFIX)]
        for shard in self.shards:
            if not shard.is_file():
                msg = f"{shard}: no such tar shard"
                raise InputError(msg)
        others = [p for p in inputs if p not in self.shards]
        self.directories = [p for p in others if p.is_dir()]
        self.files = collect_inputs(others, self.suffixes) if others else []
        if accept is not None:
            named = {os.path.abspath(p) for p in others if not p.is_dir()}
            self.files = [p for p in self.files if os.path.abspath(p) in named or accept(p)]
            if not self.files and not self.shards and catalog is None:
                msg = f"no input files ({', '.join(self.suffixes)}) in {', '.join(map(str, others))}"
                raise InputError(msg)
        self.catalog = Path(catalog) if catalog is not None else None
        self.path_column = path_column
        self.failures = []
        self.total = None if self.shards else len(self.files)
        self.columns = []
        if self.catalog is not None:
            rows, columns = self._catalog_header()
            self.total = None if self.total is None or rows is None else self.total + rows
            self.columns = [str(c) for c in columns] if keep_columns else []

    def describe(self):
        """Plain data identifying the inputs: their paths, and the catalogue's content.

        A catalogue edited between a killed run and its rerun (rows
        reordered, added, removed) is another job; each input's own size and
        modification time are checked per partition (:func:`partition_identity`).
        """
        from deepscope.core.checkpoint import sha256

        # One resolve per folder, not per file: a million inputs in a few folders cost a few symlink walks.
        folders = {parent: parent.resolve() for parent in {p.parent for p in self.files}}
        files = [str(folders[p.parent] / p.name) for p in self.files]
        return {
            "files": files,
            "shards": [str(p.resolve()) for p in self.shards],
            "catalog": str(self.catalog.resolve()) if self.catalog else None,
            "catalog_sha256": sha256(self.catalog) if self.catalog else None,
            "path_column": self.path_column if self.catalog else None,
        }

    def check_output(self, output, written_suffixes=()):
        """Refuse (:class:`~deepscope.errors.OutputError`) an output that is an input, or that a rerun would read.

        Refused: an output that is an input file, tar shard or the catalogue
        (``--catalog lab.csv --out lab.csv``); an output directory that
        already holds inputs of this run (its own earlier outputs, collected
        as inputs), unless it is an input directory itself; an output inside
        (or equal to) an input directory when its name, or the
        ``written_suffixes`` of the files the run writes there, match the
        suffixes searched for. Parquet parts beside JPEG cutouts are fine.
        """
        # Strings, not Path.resolve(): a million inputs must not cost a million
        # symlink walks. The output is compared both as given and resolved.
        spellings = {os.path.abspath(output), os.path.realpath(output)}
        prefixes = tuple(spelling + os.sep for spelling in spellings)
        named = self.shards + ([self.catalog] if self.catalog else [])
        for path in named:
            if {os.path.abspath(path), os.path.realpath(path)} & spellings:
                msg = f"{output}: the output is also an input of this run; write it elsewhere"
                raise OutputError(msg)
        # Writing into an input directory itself is a common layout (STAR
        # files beside their micrographs): refused below only when the run
        # would collect what it writes there.
        given = {os.path.realpath(directory) for directory in self.directories}
        for path in self.files:
            absolute = os.path.abspath(path)
            if absolute in spellings:
                msg = f"{output}: the output is also an input of this run; write it elsewhere"
                raise OutputError(msg)
            if absolute.startswith(prefixes) and not spellings & given:
                msg = (f"{output}: the output directory holds inputs of this run ({path}), such as "
                       "its own earlier outputs; write outside the input directories")
                raise OutputError(msg)
        collected = _has_suffix(Path(output).name, self.suffixes) or any(
            _has_suffix(name, self.suffixes) for name in written_suffixes)
        for directory in self.directories:
            if collected and Path(os.path.realpath(output)).is_relative_to(os.path.realpath(directory)):
                msg = (f"{output}: the output lies inside input directory {directory} and a rerun would "
                       "read it back as input; write it elsewhere")
                raise OutputError(msg)

    def partitions(self, size):
        """The inputs cut into :class:`FilePartition` of ``size`` (the last may be shorter)."""
        entries = self._entries()
        for index in itertools.count():
            chunk = list(itertools.islice(entries, size))
            if not chunk:
                return
            refs = [ref for ref, _ in chunk]
            yield FilePartition(index, partition_identity(refs), refs,
                                [carried for _, carried in chunk] if self.columns else None)

    def __iter__(self):
        return (ref for ref, _ in self._entries())

    def _entries(self):
        """``(InputRef, carried columns or None)`` of every input."""
        blank = dict.fromkeys(self.columns) if self.columns else None
        for path in self.files:
            yield InputRef(str(path), str(path)), blank
        for shard in self.shards:
            for ref in self._shard_refs(shard):
                yield ref, blank
        if self.catalog is not None:
            base = self.catalog.parent
            for value, carried in self._catalog_entries():
                path = Path(value)
                path = path if path.is_absolute() else base / path
                yield InputRef(str(path), str(path)), carried

    def _shard_refs(self, shard):
        try:
            with tarfile.open(shard, "r:") as archive:
                for member in archive:
                    if member.isfile() and _has_suffix(member.name, self.suffixes):
                        yield InputRef(f"{shard}/{member.name}", str(shard), member.offset_data, member.size)
        except (tarfile.TarError, OSError, EOFError) as exc:
            reason = f"not a readable uncompressed tar shard ({exc})"
            log.warning("%s: %s", shard, reason)
            self.failures.append((str(shard), reason))

    def _catalog_format(self):
        name = self.catalog.name.lower()
        for suffix in CATALOG_SUFFIXES:
            if name.endswith(suffix):
                return "fits" if ".fit" in suffix else suffix.lstrip(".")
        msg = f"{self.catalog}: unsupported catalogue format; use {', '.join(CATALOG_SUFFIXES)}"
        raise InputError(msg)

    def _check_columns(self, columns):
        if self.path_column not in columns:
            msg = (f"{self.catalog}: no column {self.path_column!r} with the input paths "
                   f"(columns: {', '.join(map(str, columns))}); name it with --path-column")
            raise InputError(msg)
        return columns

    def _catalog_header(self):
        """Row count (None for CSV, which would need a full read) and column names, the path column checked."""
        if not self.catalog.is_file():
            msg = f"{self.catalog}: no such catalogue"
            raise InputError(msg)
        kind = self._catalog_format()
        try:
            if kind == "parquet":
                import pyarrow.parquet as pq

                meta = pq.ParquetFile(self.catalog)
                return meta.metadata.num_rows, self._check_columns(meta.schema_arrow.names)
            if kind == "csv":
                import pandas as pd

                return None, self._check_columns(pd.read_csv(self.catalog, nrows=0).columns)
            with self._fits_table() as data:
                return len(data), data.names
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parser failure means an unreadable catalogue
            msg = f"{self.catalog}: cannot read catalogue ({type(exc).__name__}: {exc})"
            raise InputError(msg) from None

    @contextlib.contextmanager
    def _fits_table(self):
        """The catalogue's first table, memory-mapped (read from disk chunk by chunk)."""
        from astropy.io import fits

        with fits.open(self.catalog, memmap=True) as hdul:
            for hdu in hdul:
                if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                    self._check_columns(hdu.columns.names)
                    yield hdu.data
                    return
        msg = f"{self.catalog}: no table HDU"
        raise InputError(msg)

    def _catalog_entries(self):
        """``(path, carried columns or None)`` of every catalogue row, a chunk of rows at a time."""
        kind, step, keep = self._catalog_format(), CATALOG_CHUNK_ROWS, bool(self.columns)
        if kind == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(self.catalog).iter_batches(step, columns=None if keep else [self.path_column]):
                paths = batch.column(self.path_column).to_pylist()
                yield from zip(paths, batch.to_pylist() if keep else itertools.repeat(None))
        elif kind == "csv":
            import pandas as pd

            # The paths as written ("NA" is a name here), the other columns as pandas reads a table.
            with pd.read_csv(self.catalog, usecols=[self.path_column], dtype=str, chunksize=step,
                             keep_default_na=False) as chunks, \
                    (pd.read_csv(self.catalog, chunksize=step) if keep else contextlib.nullcontext()) as rows:
                for chunk in chunks:
                    paths = chunk[self.path_column].tolist()
                    carried = itertools.repeat(None) if rows is None else (
                        {**row, self.path_column: path} for row, path in zip(_records(next(rows)), paths))
                    yield from zip(paths, carried)
        else:
            with self._fits_table() as data:
                for start in range(0, len(data), step):
                    block = data[start:start + step]
                    paths = [v.decode() if isinstance(v, bytes) else str(v).strip() for v in block[self.path_column]]
                    columns = [[v.decode() if isinstance(v, bytes) else v for v in block[name].tolist()]
                               for name in self.columns]
                    yield from zip(paths, (dict(zip(self.columns, values)) for values in zip(*columns))
                                   if keep else itertools.repeat(None))


def partition_identity(refs):
    """A digest (hex SHA-256) of a partition's inputs: names, locations, sizes and modification times.

    An input replaced between a killed run and its rerun changes its size or
    mtime, so the partition holding it is computed again while the others
    are kept. Only ``stat`` is called: cheap enough for a million inputs.

    >>> a, b = InputRef("missing-a", "missing-a"), InputRef("missing-b", "missing-b")
    >>> partition_identity([a, b]) == partition_identity([b, a])
    False
    """
    digest = hashlib.sha256()
    for ref in refs:
        try:
            stat = os.stat(ref.path)
            state = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            state = None  # missing now: a failure either way, recorded as such
        digest.update(repr((ref.name, ref.path, ref.offset, ref.size, state)).encode())
    return digest.hexdigest()
