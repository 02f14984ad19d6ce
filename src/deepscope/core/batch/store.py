"""Results written partition by partition, so a killed batch resumes where it stopped.

Each finished partition is written at once, atomically, as a Parquet part
beside a CSV of its bad inputs. ``_job.json`` records the job the parts
belong to (:func:`~deepscope.core.batch.runner.describe_job`): a rerun of
it skips the done partitions, another job discards them rather than mixing
them in. A part is trusted only once :meth:`PartStore.verify` has checked
its record (its inputs' names, sizes and modification times, its row
counts, the checksums of its bad-input list and of the files the predictor
wrote for it) and its Parquet page checksums. The store holds the output's
lock (:mod:`deepscope.core.lock`) until :meth:`PartStore.finish` merges the
parts into one table (part by part, into a temporary file renamed onto the
output) or keeps them as the result (survey scale), or :meth:`PartStore.close`.
"""

import contextlib
import json
import logging
import shutil
from pathlib import Path

from deepscope.core.files import atomic_output, atomic_path, check_writable
from deepscope.core.lock import lock_output
from deepscope.errors import OutputError, first_line

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".parquet")
JOB_FILE = "_job.json"
# Parquet schema metadata key of a part's record (see PartStore.verify).
RECORD_KEY = b"deepscope_part"
# What a store writes into its directory: parts and bad-input lists.
STORE_SUFFIXES = (".parquet", ".csv")


class PartStore:
    """Parts of one batch job under a directory.

    Parameters
    ----------
    directory : str or Path
        Where the parts go (created if needed).
    job : dict
        Plain data identifying the job; parts of another job are discarded.
    merge_into : str or Path, optional
        A ``.csv`` or ``.parquet`` table that :meth:`finish` merges the parts into.
    keep : bool
        Keep the parts after :meth:`finish` (they are the result), or
        remove them (they were only there to make the run resumable).

    Attributes
    ----------
    output : Path
        The output as the user named it, for messages and input checks:
        ``merge_into``, else ``directory``, or the directory around it when
        its name starts with a dot (a hidden store keeping the books of the
        outputs beside it).

    Raises
    ------
    OutputError
        If the parts directory or the merged table cannot be written, or
        another run is writing the same output.
    """

    def __init__(self, directory, job, merge_into=None, keep=True):
        self.merge_into = None if merge_into is None else check_writable(merge_into)
        self.dir = check_writable(directory, is_dir=True)
        self.output = Path(merge_into or (self.dir.parent if self.dir.name.startswith(".") else self.dir))
        self.keep = keep
        self.job = json.loads(json.dumps(job, default=str))
        self._lock = lock_output(self.dir, str(self.output))
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def close(self):
        """Release the output's lock (also done by :meth:`finish`); parts stay for a rerun."""
        self._lock.release()

    @classmethod
    def for_table(cls, out, job):
        """The store behind a predict command's ``--out``.

        Parameters
        ----------
        out : str or Path
            A ``.csv`` or ``.parquet`` table (parts wait in a hidden
            ``.<name>.parts`` directory beside it until merged), or a
            directory that receives the Parquet parts as the result.
        job : dict

        Raises
        ------
        OutputError
            If ``out`` has another suffix and is not a directory.
        """
        out = Path(out)
        suffix = out.suffix.lower()
        if suffix in TABLE_SUFFIXES:
            return cls(out.parent / f".{out.name}.parts", job, merge_into=out, keep=False)
        if suffix and not out.is_dir():
            msg = (f"{out}: unsupported output {suffix!r}; use .csv, .parquet, "
                   "or a directory to receive Parquet parts")
            raise OutputError(msg)
        return cls(out, job)

    def _open(self):
        # Temporary files of a killed run: never renamed, so never part of
        # the result. Safe to remove under the lock: no other run writes here.
        stale = list(self.dir.glob(".*.tmp"))
        if self.merge_into is not None:
            stale += self.merge_into.parent.glob(f".{self.merge_into.name}.*.tmp")
        elif self.output != self.dir:
            # A hidden store's outputs (STAR files ...) are written beside it.
            stale += self.output.glob(".*.tmp")
        for path in stale:
            log.info("removing %s, left by a run that was killed", path)
            path.unlink(missing_ok=True)
        try:
            self._check_job()
        except OSError as exc:
            msg = f"{self.dir / JOB_FILE}: cannot write: {exc.strerror or exc}"
            raise OutputError(msg) from None

    def _check_job(self):
        job_path = self.dir / JOB_FILE
        if job_path.exists():
            try:
                previous = json.loads(job_path.read_text())
            except (OSError, ValueError):
                previous = None
            if previous == self.job:
                done = len(self.done_indices())
                if done:
                    log.info("resuming: %d partition(s) already done in %s", done, self.dir)
                return
            log.warning("%s holds parts of a different job (other inputs, catalogue, model, engine, device or "
                        "options); discarding them", self.dir)
            for path in self._parts() + sorted(self.dir.glob("part-*.failed.csv")):
                path.unlink()
        with atomic_path(job_path) as tmp:
            tmp.write_text(json.dumps(self.job, indent=1))

    def _parts(self):
        return sorted(self.dir.glob("part-*.parquet"))

    def part_path(self, index):
        """Path of partition ``index``'s Parquet part."""
        return self.dir / f"part-{index:08d}.parquet"

    def failed_path(self, index):
        """Path of partition ``index``'s bad-input list."""
        return self.dir / f"part-{index:08d}.failed.csv"

    def done_indices(self):
        """Indices of the partitions already written, as a set."""
        return {int(p.name[5:13]) for p in self.dir.glob("part-*.parquet")}

    def write(self, index, rows, failures, inputs=None, outputs=(), dropped=0):
        """Write one finished partition (atomically; the part last).

        Parameters
        ----------
        index : int
        rows : list of dict
            Good rows, ``file`` first.
        failures : list of (str, str)
            ``(input, reason)`` for every bad input of the partition.
        inputs : str, optional
            The partition's identity, taken before its inputs were read.
        outputs : iterable of str or Path
            Files the predictor wrote for this partition; their checksums
            are recorded so that a missing or altered one invalidates it.
        dropped : int
            Good inputs whose rows a row filter left out.

        Raises
        ------
        OutputError
            If a file cannot be written or an output file cannot be read.
        """
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        from deepscope.core.checkpoint import sha256

        failed = self.failed_path(index)
        try:
            record = {"inputs": inputs, "rows": len(rows), "dropped": dropped, "failed": len(failures),
                      "failed_sha256": None, "outputs": {str(path): sha256(path) for path in outputs}}
            if failures:
                with atomic_path(failed) as tmp:
                    pd.DataFrame(failures, columns=["file", "error"]).to_csv(tmp, index=False)
                record["failed_sha256"] = sha256(failed)
            else:
                # A list from an earlier computation of this partition is stale now.
                failed.unlink(missing_ok=True)
            table = pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)
            metadata = {**(table.schema.metadata or {}), RECORD_KEY: json.dumps(record).encode()}
            with atomic_path(self.part_path(index)) as tmp:
                pq.write_table(table.replace_schema_metadata(metadata), tmp, write_page_checksum=True)
        except OSError as exc:
            msg = f"{exc.filename or self.dir}: cannot write results: {exc.strerror or exc}"
            raise OutputError(msg) from None

    def verify(self, index, inputs, count):
        """Why partition ``index``'s part cannot be trusted, or None when it can.

        Parameters
        ----------
        index : int
        inputs : str
            The partition's identity now.
        count : int
            Its number of inputs now.

        Returns
        -------
        str or None
            The reason, e.g. ``"its inputs changed"``.
        """
        import pyarrow.parquet as pq

        from deepscope.core.checkpoint import sha256

        try:
            metadata = pq.ParquetFile(self.part_path(index)).schema_arrow.metadata or {}
            record = json.loads(metadata[RECORD_KEY])
            # Reads every page, checking the checksums written with it.
            rows = pq.read_table(self.part_path(index), page_checksum_verification=True).num_rows
        except KeyError:
            return "it has no deepscope record (written by an older version)"
        except Exception as exc:  # noqa: BLE001 - whatever pyarrow says, the part is unreadable
            return f"it is unreadable ({type(exc).__name__}: {first_line(exc)})"
        if record.get("inputs") != inputs:
            return "its inputs changed (added, removed, replaced or modified)"
        failed_count = record.get("failed", 0)
        if rows != record.get("rows") or rows + record.get("dropped", 0) + failed_count != count:
            return f"it holds {rows} rows and {failed_count} failures for {count} inputs"
        failed = self.failed_path(index)
        if failed_count:
            if not failed.is_file() or sha256(failed) != record.get("failed_sha256"):
                return f"its list of bad inputs {failed.name} is missing or changed"
        elif failed.exists():
            failed.unlink()  # stale: this partition had no bad input
        for path, digest in record.get("outputs", {}).items():
            if not Path(path).is_file() or sha256(path) != digest:
                return f"its output {path} is missing or changed"
        return None

    def failures(self):
        """Every bad input recorded so far, in partition order, as ``(name, reason)`` pairs."""
        import pandas as pd

        found = []
        for path in sorted(self.dir.glob("part-*.failed.csv")):
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            found += list(zip(table["file"], table["error"]))
        return found

    def iter_tables(self):
        """The parts as pandas tables, in partition order (one in memory at a time)."""
        import pandas as pd

        for path in self._parts():
            yield pd.read_parquet(path)

    def finish(self):
        """Merge the parts into the output table (if one was asked for), tidy up, release the lock.

        Returns
        -------
        int
            Number of result rows.

        Raises
        ------
        OutputError
            If the merged table cannot be written.
        """
        import pyarrow.parquet as pq

        try:
            count = sum(pq.ParquetFile(path).metadata.num_rows for path in self._parts())
            if self.merge_into is not None and count:  # no good row at all: no empty, misleading table
                self._merge()
            if not self.keep:
                for path in self.dir.iterdir():
                    if path != self._lock.path:
                        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        finally:
            self.close()
        if not self.keep:
            # Emptied under the lock; a run that started since owns it now.
            with contextlib.suppress(OSError):
                self.dir.rmdir()
        return count

    def _merge(self):
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_output(self.merge_into) as tmp:
            if self.merge_into.suffix.lower() == ".csv":
                tables = (table for table in self.iter_tables() if len(table))
                for number, table in enumerate(tables):
                    table.to_csv(tmp, index=False, mode="a", header=number == 0)
                return
            parts = [path for path in self._parts() if pq.ParquetFile(path).metadata.num_rows]
            # Carried columns may be all missing in one part (null) and numbers in another: one schema for all.
            schema = pa.unify_schemas([pq.read_schema(path) for path in parts], promote_options="permissive")
            schema = schema.with_metadata({k: v for k, v in (schema.metadata or {}).items()
                                           if k != RECORD_KEY})
            with pq.ParquetWriter(tmp, schema) as writer:
                for path in parts:
                    writer.write_table(pq.read_table(path).cast(schema))
