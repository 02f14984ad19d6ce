"""Where batch inputs come from: files, directories, catalogues, tar shards.

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
import logging
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

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
    """One input of a batch.

    Attributes
    ----------
    name : str
        The input's path as reported in outputs (``shard.tar/member`` for a
        tar member).
    path : str
        The file to read: the input itself, or the tar shard holding it.
    offset : int
        Byte offset of a tar member's data in ``path``; -1 for plain files.
    size : int
        Size of a tar member's data in bytes.
    """

    name: str
    path: str
    offset: int = -1
    size: int = 0

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


def _has_suffix(name, suffixes):
    return name.lower().endswith(tuple(suffixes))


class InputStream:
    """Iterable of :class:`InputRef` over files, directories, catalogues and tar shards.

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

    Attributes
    ----------
    failures : list of (str, str)
        Shards that could not be read to the end, with the reason; filled
        while iterating (the other inputs still come through).
    total : int or None
        Number of inputs when known without reading them all (file lists,
        Parquet and FITS catalogues), else None.

    Raises
    ------
    InputError
        At construction: no inputs, a missing path, an unsupported
        catalogue format or a missing path column.
    """

    def __init__(self, inputs=(), suffixes=(), catalog=None, path_column="file"):
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
        self.catalog = Path(catalog) if catalog is not None else None
        self.path_column = path_column
        self.failures = []
        self.total = None if self.shards else len(self.files)
        if self.catalog is not None:
            rows = self._catalog_rows()
            self.total = None if self.total is None or rows is None else self.total + rows

    def describe(self):
        """A plain-data description that identifies this input set (for resuming).

        Paths, and the catalogue's content: a catalogue edited between a
        killed run and its rerun (rows reordered, added, removed) is another
        job. Each input's own size and modification time are checked per
        partition instead (see :func:`partition_identity`).

        Returns
        -------
        dict
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
        """Refuse an output that is also an input, or that this run would read back.

        Checked before any work. Refused: an output that is an input file,
        tar shard or the catalogue (``--catalog lab.csv --out lab.csv``); an
        output directory that already holds inputs of this run (its own
        earlier outputs, collected as inputs), unless it is an input
        directory itself; an output inside (or equal to) an input directory
        when its name, or ``written_suffixes``, match the suffixes searched
        for there. An output directory inside an input directory is
        otherwise allowed (Parquet parts beside JPEG cutouts are never read
        as cutouts).

        Parameters
        ----------
        output : str or Path
            The output table or directory, as the user named it.
        written_suffixes : sequence of str
            Suffixes of the files the run writes into an output directory.

        Raises
        ------
        OutputError
            Naming the output and the input it collides with.
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

    def __iter__(self):
        for path in self.files:
            yield InputRef(str(path), str(path))
        for shard in self.shards:
            yield from self._shard_refs(shard)
        if self.catalog is not None:
            base = self.catalog.parent
            for value in self._catalog_paths():
                path = Path(value)
                path = path if path.is_absolute() else base / path
                yield InputRef(str(path), str(path))

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

    def _missing_column(self, columns):
        msg = (f"{self.catalog}: no column {self.path_column!r} with the input paths "
               f"(columns: {', '.join(map(str, columns))}); name it with --path-column")
        raise InputError(msg)

    def _catalog_rows(self):
        """Row count (None for CSV, which would need a full read), checking the path column."""
        if not self.catalog.is_file():
            msg = f"{self.catalog}: no such catalogue"
            raise InputError(msg)
        kind = self._catalog_format()
        try:
            if kind == "parquet":
                import pyarrow.parquet as pq

                meta = pq.ParquetFile(self.catalog)
                if self.path_column not in meta.schema_arrow.names:
                    self._missing_column(meta.schema_arrow.names)
                return meta.metadata.num_rows
            if kind == "csv":
                import pandas as pd

                columns = pd.read_csv(self.catalog, nrows=0).columns
                if self.path_column not in columns:
                    self._missing_column(columns)
                return None
            with self._fits_paths() as column:
                return len(column)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parser failure means an unreadable catalogue
            msg = f"{self.catalog}: cannot read catalogue ({type(exc).__name__}: {exc})"
            raise InputError(msg) from None

    @contextlib.contextmanager
    def _fits_paths(self):
        """The catalogue's path column, memory-mapped (read from disk chunk by chunk)."""
        from astropy.io import fits

        with fits.open(self.catalog, memmap=True) as hdul:
            for hdu in hdul:
                if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                    if self.path_column not in hdu.columns.names:
                        self._missing_column(hdu.columns.names)
                    yield hdu.data[self.path_column]
                    return
        msg = f"{self.catalog}: no table HDU"
        raise InputError(msg)

    def _catalog_paths(self):
        kind = self._catalog_format()
        if kind == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(self.catalog).iter_batches(CATALOG_CHUNK_ROWS, columns=[self.path_column]):
                yield from batch.column(0).to_pylist()
        elif kind == "csv":
            import pandas as pd

            chunks = pd.read_csv(self.catalog, usecols=[self.path_column], dtype=str,
                                 chunksize=CATALOG_CHUNK_ROWS, keep_default_na=False)
            for chunk in chunks:
                yield from chunk[self.path_column].tolist()
        else:
            with self._fits_paths() as column:
                for start in range(0, len(column), CATALOG_CHUNK_ROWS):
                    for value in column[start:start + CATALOG_CHUNK_ROWS]:
                        yield value.decode() if isinstance(value, bytes) else str(value).strip()


def partition_identity(refs):
    """A digest of a partition's inputs: names, locations, sizes and modification times.

    An input replaced between a killed run and its rerun changes its size or
    mtime, so the partition holding it is computed again while the others
    are kept. Only ``stat`` is called: cheap enough for a million inputs.

    Parameters
    ----------
    refs : list of InputRef

    Returns
    -------
    str
        Hex SHA-256.

    Examples
    --------
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


def partitions(refs, size):
    """Group a stream of refs into lists of ``size`` (the last may be shorter).

    Parameters
    ----------
    refs : iterable of InputRef
    size : int

    Yields
    ------
    list of InputRef
    """
    chunk = []
    for ref in refs:
        chunk.append(ref)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
