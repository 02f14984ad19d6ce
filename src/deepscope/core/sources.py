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
import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path

from deepscope.core.files import collect_inputs
from deepscope.errors import FormatError, InputError

log = logging.getLogger(__name__)

CATALOG_SUFFIXES = (".csv", ".parquet", ".fits", ".fit", ".fits.gz")
TAR_SUFFIX = ".tar"
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
        self.shards = [p for p in inputs if p.name.lower().endswith(TAR_SUFFIX)]
        for shard in self.shards:
            if not shard.is_file():
                msg = f"{shard}: no such tar shard"
                raise InputError(msg)
        others = [p for p in inputs if p not in self.shards]
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

        Returns
        -------
        dict
        """
        return {
            "files": [str(p.resolve()) for p in self.files],
            "shards": [str(p.resolve()) for p in self.shards],
            "catalog": str(self.catalog.resolve()) if self.catalog else None,
            "path_column": self.path_column if self.catalog else None,
        }

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
