"""Results written partition by partition, so a killed batch resumes where it stopped.

A batch is cut into numbered partitions of inputs. Each finished partition
is written at once as a Parquet part (its good rows) beside a CSV of its bad
inputs, both atomically, the part last: a part on disk means its partition
is done and nothing in it is ever computed again. A ``_job.json`` records
what the parts were computed from (command, inputs, model, options); a rerun
with the same arguments skips the done partitions, while parts of a
different job are discarded rather than mixed in.

The result is either the directory of parts itself (survey scale: nothing
is ever merged in memory) or one CSV/Parquet table, merged part by part into
a temporary file renamed onto the output once every partition is done.
"""

import json
import logging
import shutil
from pathlib import Path

from deepscope.core.files import atomic_path, check_writable
from deepscope.errors import OutputError

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".parquet")
JOB_FILE = "_job.json"


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

    Raises
    ------
    OutputError
        If the parts directory or the merged table cannot be written.
    """

    def __init__(self, directory, job, merge_into=None, keep=True):
        self.merge_into = None if merge_into is None else check_writable(merge_into)
        self.dir = check_writable(directory, is_dir=True)
        self.keep = keep
        self.job = json.loads(json.dumps(job, default=str))
        self._open()

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

        Returns
        -------
        PartStore

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
        # Temporary files of a killed run: never renamed, so never part of the result.
        for stale in self.dir.glob(".part-*.tmp"):
            stale.unlink()
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
            log.warning("%s holds parts of a different job; discarding them", self.dir)
            for path in self._part_files():
                path.unlink()
        with atomic_path(job_path) as tmp:
            tmp.write_text(json.dumps(self.job, indent=1))

    def _part_files(self):
        return sorted(self.dir.glob("part-*.parquet")) + sorted(self.dir.glob("part-*.failed.csv"))

    def part_path(self, index):
        """Path of partition ``index``'s Parquet part."""
        return self.dir / f"part-{index:08d}.parquet"

    def failed_path(self, index):
        """Path of partition ``index``'s bad-input list."""
        return self.dir / f"part-{index:08d}.failed.csv"

    def done_indices(self):
        """Indices of the partitions already written.

        Returns
        -------
        set of int
        """
        return {int(p.name[5:13]) for p in self.dir.glob("part-*.parquet")}

    def write(self, index, rows, failures):
        """Write one finished partition (atomically; the part last).

        Parameters
        ----------
        index : int
        rows : list of dict
            Good rows, ``file`` first.
        failures : list of (str, str)
            ``(input, reason)`` for every bad input of the partition.
        """
        import pandas as pd

        try:
            if failures:
                with atomic_path(self.failed_path(index)) as tmp:
                    pd.DataFrame(failures, columns=["file", "error"]).to_csv(tmp, index=False)
            with atomic_path(self.part_path(index)) as tmp:
                pd.DataFrame(rows).to_parquet(tmp, index=False)
        except OSError as exc:
            msg = f"{self.dir}: cannot write results: {exc.strerror or exc}"
            raise OutputError(msg) from None

    def failures(self):
        """Every bad input recorded so far, in partition order.

        Returns
        -------
        list of (str, str)
        """
        import pandas as pd

        found = []
        for path in sorted(self.dir.glob("part-*.failed.csv")):
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            found += list(zip(table["file"], table["error"]))
        return found

    def iter_tables(self):
        """The parts as pandas tables, in partition order (one in memory at a time)."""
        import pandas as pd

        for path in sorted(self.dir.glob("part-*.parquet")):
            yield pd.read_parquet(path)

    def finish(self):
        """Merge the parts into the output table (if one was asked for) and tidy up.

        Returns
        -------
        int
            Number of result rows.
        """
        count = sum(self._row_counts())
        if self.merge_into is not None:
            self._merge(count)
        if not self.keep:
            shutil.rmtree(self.dir)
        return count

    def _row_counts(self):
        import pyarrow.parquet as pq

        return [pq.ParquetFile(path).metadata.num_rows for path in sorted(self.dir.glob("part-*.parquet"))]

    def _merge(self, total):
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not total:
            # No good input at all: no empty, misleading table is written.
            return 0
        tables = (table for table in self.iter_tables() if len(table))
        try:
            with atomic_path(self.merge_into) as tmp:
                if self.merge_into.suffix.lower() == ".csv":
                    for number, table in enumerate(tables):
                        table.to_csv(tmp, index=False, mode="a", header=number == 0)
                else:
                    writer = None
                    for table in tables:
                        if writer is None:
                            schema = pa.Schema.from_pandas(table, preserve_index=False)
                            writer = pq.ParquetWriter(tmp, schema)
                        writer.write_table(pa.Table.from_pandas(table, schema=schema, preserve_index=False))
                    writer.close()
        except OSError as exc:
            msg = f"{self.merge_into}: cannot write output: {exc.strerror or exc}"
            raise OutputError(msg) from None
