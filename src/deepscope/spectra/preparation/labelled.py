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
from deepscope.spectra.preparation.grid import Grid, air_wave, on_grid
from deepscope.spectra.preparation.velocity import VelocityTemplates, velocities

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
                  progress: bool = False, short: bool = False, templates: VelocityTemplates | None = None) -> tuple:
    """Read and prepare many spectra with ``workers`` threads; bad files are reported, not fatal.

    With a model's radial-velocity ``templates``, each spectrum is moved to
    its rest frame as ``spectra predict`` moves it (a velocity that cannot
    be measured: as read); without, spectra are prepared as read. With ``short``, each spectrum is also prepared, from the same read, as if
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

    def short_copy(spectrum, full, rv):
        try:
            return on_grid(spectrum, grid, min_coverage, red_limit=SHORT_RED_LIMIT, rv=rv)
        except FormatError:  # too little data blueward of the limit
            return full

    def load(path):
        try:
            spectrum = read_spectrum(path)
            rv = float("nan")
            if templates is not None:
                (rv,), _ = velocities([spectrum], air_wave(spectrum), spectrum.flux[None], spectrum.valid[None],
                                      templates)
            full = on_grid(spectrum, grid, min_coverage, path=str(path), rv=rv)
        except DeepscopeError as exc:
            return None, None, str(exc)
        return full, short_copy(spectrum, full, rv) if short else None, None

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
                  progress: bool = True, short: bool = False, templates: VelocityTemplates | None = None) -> tuple:
    """Read the spectra that ``labels.csv`` tables list, as :func:`load_prepared` reads them.

    Returns the manifest rows (:func:`~deepscope.spectra.io.files.spectra_manifest`)
    that loaded, ``x``, the failures and, with ``short``, the short copies.
    """
    manifest = spectra_manifest(labels_paths)
    x, good, *rest = load_prepared(list(manifest["path"]), grid, min_coverage, workers, progress, short, templates)
    return manifest.iloc[good].reset_index(drop=True), x, *rest


def velocity_templates(labels_paths: Sequence[str | Path], grid: Grid = Grid(), min_coverage: float = 0.4,
                       workers: int = 2, progress: bool = False) -> VelocityTemplates | None:
    """Radial-velocity templates of a model from the labelled libraries it was trained on, in their rest frame.

    Every spectrum that covers ``min_coverage`` of the grid is read onto
    the fine grid (:class:`~deepscope.spectra.preparation.grid.FineGrid`);
    spectra of a known subclass are averaged by class and moved to one rest
    frame (:func:`~deepscope.spectra.preparation.velocity.rest_frame`).
    :meth:`~deepscope.spectra.preparation.velocity.VelocityTemplates.as_meta`
    makes them checkpoint metadata (``meta["velocity_templates"]``). None if
    no readable spectrum has a known subclass.
    """
    from deepscope.core.progress import progress_bar
    from deepscope.spectra.preparation.grid import FineGrid, resample_rows
    from deepscope.spectra.preparation.velocity import rest_frame
    from deepscope.spectra.targets import type_targets

    manifest, fine = spectra_manifest(labels_paths), FineGrid(grid)

    def load(path):
        try:
            spectrum = read_spectrum(path)
            wave = air_wave(spectrum)
            on_grid(spectrum, grid, min_coverage, path=str(path))  # refuses what training refuses
        except DeepscopeError:
            return None
        return resample_rows(wave, spectrum.flux[None], spectrum.valid[None], fine.edges)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(progress_bar(pool.map(load, manifest["path"]), enabled=progress, total=len(manifest),
                                    desc="read spectra", leave=False))
    good = [i for i, result in enumerate(results) if result is not None]
    targets = type_targets([manifest["sptype"].iloc[i] for i in good])
    t_index = np.where(targets["t_known"] > 0, targets["t"], np.nan)
    if not np.isfinite(t_index).any():
        return None
    flux = np.concatenate([results[i][0] for i in good])
    cover = np.concatenate([results[i][1] for i in good])
    return rest_frame(flux, cover, t_index, fine)[0]
