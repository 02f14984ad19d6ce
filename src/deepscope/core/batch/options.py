"""Options that travel together through every batch command, as one dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deepscope.errors import InputError


@dataclass
class BatchOptions:
    """How a batch job reads its inputs and where it runs."""

    catalog: str | Path | None = None  # CSV, Parquet or FITS table listing more inputs
    path_column: str = "file"  # catalogue column with the paths, relative to the catalogue
    partition_size: int = 1024  # inputs per partition: the unit of resuming and of Dask tasks
    batch_size: int = 512  # inputs per forward pass
    read_threads: int = 2  # file-decoding threads, or reader processes, per process
    threads: int | None = None  # torch CPU threads in process; None keeps torch's default (all cores)
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"; cuda fails loudly if absent
    engine: str = "auto"  # what runs the network: auto, torch, onnx or onnx-int8 (deepscope.core.onnx_engine)
    workers: int | None = None  # local Dask cluster of this many worker processes
    scheduler: str | None = None  # address of an existing Dask scheduler
    progress: bool = True  # progress bar on stderr

    def check(self) -> None:
        """Refuse inconsistent options before any work.

        Raises
        ------
        InputError

        Examples
        --------
        >>> BatchOptions(batch_size=0).check()
        Traceback (most recent call last):
        ...
        deepscope.errors.InputError: --batch-size must be at least 1, got 0
        """
        workers = 1 if self.workers is None else self.workers
        for flag, value in (("--batch-size", self.batch_size), ("--partition-size", self.partition_size),
                            ("--read-threads", self.read_threads), ("--workers", workers)):
            if value < 1:
                msg = f"{flag} must be at least 1, got {value}"
                raise InputError(msg)
        if self.threads is not None and self.threads < 0:
            msg = f"--threads must be 0 (all cores) or more, got {self.threads}"
            raise InputError(msg)
        if self.workers is not None and self.scheduler is not None:
            msg = "--workers starts a local Dask cluster and --scheduler uses an existing one: give one of them"
            raise InputError(msg)
