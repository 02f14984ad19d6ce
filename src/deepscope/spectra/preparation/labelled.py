"""Libraries loaded whole onto a grid as one array: what train, evaluate, crossval and the autoencoder read.

Each file is read and resampled on a thread, the files that fail listed
rather than fatal; the continuum division then runs on the whole library in
batches (:func:`~deepscope.spectra.preparation.continuum.normalise`), which
gives every spectrum the numbers it gets alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from deepscope.errors import DeepscopeError, FormatError
from deepscope.spectra.io.files import read_spectrum, spectra_manifest
from deepscope.spectra.preparation.continuum import normalise
from deepscope.spectra.preparation.grid import Grid, on_grid

# Directories are searched for these only: a folder's README.txt or list.txt
# is not a spectrum, while a text spectrum named explicitly is still read.
DIRECTORY_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".rbn", ".rbx", ".rec",
                      ".rbn.gz", ".rbx.gz", ".rec.gz")
# MKCLASS libr18 ends here (Angstrom): blue classification spectra like it are
# common, so every training spectrum also trains as if it stopped there.
SHORT_RED_LIMIT = 4620.0
# Spectra normalised together: the batch of a prediction partition, and a bound on the temporaries.
NORMALISE_BATCH = 1024


def _without_path(path, message):
    """A file's error message without its leading ``path:``, for batch lists that name the file already."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def load_prepared(paths: Sequence[str | Path], grid: Grid = Grid(), min_coverage: float = 0.4, workers: int = 2,
                  progress: bool = False, short: bool = False) -> tuple:
    """Read and prepare many spectra with ``workers`` threads; bad files are reported, not fatal.

    With ``short``, each spectrum is also prepared, from the same read, as if
    it ended at :data:`SHORT_RED_LIMIT` (its short copy for training).

    Returns
    -------
    x : numpy.ndarray
        ``(n_good, 2, grid.n)`` float32.
    good : numpy.ndarray of int
        Index into ``paths`` of each row of ``x``.
    failures : list of (str, str)
    short_x : numpy.ndarray
        Only with ``short``: the short copies, aligned with ``x``; a
        spectrum with too little data blueward of the limit keeps its full
        version.
    """
    from deepscope.core.progress import progress_bar

    def short_copy(spectrum, full):
        try:
            return on_grid(spectrum, grid, min_coverage, red_limit=SHORT_RED_LIMIT)
        except FormatError:  # too little data blueward of the limit
            return full

    def load(path):
        try:
            spectrum = read_spectrum(path)
            full = on_grid(spectrum, grid, min_coverage, path=str(path))
        except DeepscopeError as exc:
            return None, None, str(exc)
        return full, short_copy(spectrum, full) if short else None, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(progress_bar(pool.map(load, paths), enabled=progress, total=len(paths),
                                    desc="read spectra", leave=False))
    gridded, shorts, good, failures = [], [], [], []
    for i, (full, short_gridded, error) in enumerate(results):
        if error is None:
            gridded.append(full)
            shorts.append(short_gridded)
            good.append(i)
        else:
            failures.append((str(paths[i]), _without_path(paths[i], error)))
    loaded = _normalised(gridded, grid), np.asarray(good, int), failures
    return (*loaded, _normalised(shorts, grid)) if short else loaded


def _normalised(gridded, grid):
    """``(flux, mask)`` pairs on the grid -> ``(N, 2, grid.n)`` float32, a batch at a time."""
    batches = [normalise(np.stack([flux for flux, _ in gridded[lo:lo + NORMALISE_BATCH]]),
                         np.stack([mask for _, mask in gridded[lo:lo + NORMALISE_BATCH]]), grid)
               for lo in range(0, len(gridded), NORMALISE_BATCH)]
    return np.concatenate(batches) if batches else np.zeros((0, 2, grid.n), np.float32)


def load_labelled(labels_paths: Sequence[str | Path], grid: Grid = Grid(), min_coverage: float = 0.4, workers: int = 2,
                  progress: bool = True, short: bool = False) -> tuple:
    """Read the spectra that ``labels.csv`` tables list, as :func:`load_prepared` reads them.

    Returns the manifest rows (:func:`~deepscope.spectra.io.files.spectra_manifest`)
    that loaded, ``x``, the failures and, with ``short``, the short copies.
    """
    manifest = spectra_manifest(labels_paths)
    x, good, *rest = load_prepared(list(manifest["path"]), grid, min_coverage, workers, progress, short)
    return manifest.iloc[good].reset_index(drop=True), x, *rest
