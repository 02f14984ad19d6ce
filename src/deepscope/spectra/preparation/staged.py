"""Spectra staged for classification: read, moved to their rest frame, put on a model's grid and scored for the
flag, awaiting the network.

What :class:`~deepscope.spectra.predictor.SpectraPredictor` holds between
reading a partition and classifying it (no torch here). Each spectrum's
radial velocity is taken as known or measured against the model's templates
(:mod:`deepscope.spectra.preparation.velocity`) and undone as it is put on
the grid. Spectra that share
one wavelength array (the rows of a survey table, the files of a library
read by :class:`GriddedReader`) are resampled and scored as one block; a
file read alone is a block of one, and gets the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from deepscope.errors import FormatError
from deepscope.spectra.flags import spectrum_scores_rows
from deepscope.spectra.io.spectrum import ColumnNames
from deepscope.spectra.preparation.continuum import BLOCK_ROWS, normalise
from deepscope.spectra.preparation.grid import Grid, air_wave, grid_rows
from deepscope.spectra.preparation.velocity import VelocityTemplates, velocities


class GriddedSpectrum(NamedTuple):
    """One spectrum resampled onto the model's grid, with what its flag needs from the spectrum as read.

    The smoothing and continuum division that finish it wait for the batch
    (:func:`deepscope.spectra.preparation.continuum.normalise` in
    :meth:`~deepscope.spectra.predictor.SpectraPredictor.assess`), where they cost a few array operations
    for all its spectra together.
    """

    flux: np.ndarray  # (grid.n,) flux resampled onto the grid
    mask: np.ndarray  # (grid.n,) bool: grid pixels with data
    snr: float  # per-pixel signal-to-noise over the grid's range (flags.der_snr)
    median_flux: float  # median flux over the grid's range, as read
    grid: Grid  # the grid it is on
    rv: float = float("nan")  # radial velocity undone (km/s), known or measured; NaN: none, typed as read
    rv_err: float = float("nan")  # its error (km/s); NaN for a known one

    @property
    def x(self) -> np.ndarray:
        """The network input ``(2, grid.n)`` of this spectrum alone: the numbers it gets in any batch."""
        return normalise(self.flux[None], self.mask[None], self.grid)[0]


def gridded_spectra(spectra, names, grid: Grid, min_coverage: float,
                    templates: VelocityTemplates | None = None) -> tuple[list, list, list]:
    """Move many spectra to their rest frame and onto the grid, those whose ``wave`` is one array object as one batch.

    A spectrum's radial velocity is its known one (``Spectrum.rv_kms``) or,
    with ``templates``, the one measured on the templates' fine grid
    (:func:`~deepscope.spectra.preparation.velocity.measure_rv`); without
    either, or where none could be measured, it is gridded as read. The
    signal-to-noise and the median flux are measured on each spectrum as
    read (over the grid's range), before continuum normalisation hides them;
    ``names`` name the spectra in error messages.

    Returns
    -------
    good : list of int
        Index of every spectrum that covers enough of the grid, in input order.
    items : list of GriddedSpectrum
        Theirs.
    failures : list of (str, str)
        ``(name, message)`` of the others.

    Examples
    --------
    >>> from deepscope.spectra.io.spectrum import Spectrum
    >>> wave = np.linspace(3800.0, 5600.0, 2000)
    >>> star = Spectrum(wave, np.ones(2000), np.ones(2000, bool))
    >>> red = Spectrum(wave + 3000.0, np.ones(2000), np.ones(2000, bool))
    >>> good, items, failures = gridded_spectra([star, red], ["star", "red"], Grid(), 0.4)
    >>> good, items[0].mask.all(), items[0].x.shape, failures[0][1][:21]
    ([0], np.True_, (2, 580), 'red: covers only 0% o')
    """
    done = [None] * len(spectra)
    groups = {}
    for i, spectrum in enumerate(spectra):
        groups.setdefault((id(spectrum.wave), spectrum.medium), []).append(i)
    # Blocks of BLOCK_ROWS keep each step's arrays in cache; rows do not depend on their block.
    blocks = [index[lo:lo + BLOCK_ROWS] for index in groups.values() for lo in range(0, len(index), BLOCK_ROWS)]
    for index in blocks:
        wave = air_wave(spectra[index[0]])
        flux = np.stack([spectra[i].flux for i in index])
        valid = np.stack([spectra[i].valid for i in index])
        rv, rv_err = velocities([spectra[i] for i in index], wave, flux, valid, templates)
        gridded, mask, errors = grid_rows(wave, flux, valid, grid, min_coverage, [names[i] for i in index], rv=rv)
        snr, median = spectrum_scores_rows(wave, flux, valid, grid.start, grid.stop)
        for k, i in enumerate(index):
            done[i] = errors[k] or GriddedSpectrum(gridded[k], mask[k], float(snr[k]), float(median[k]), grid,
                                                   float(rv[k]), float(rv_err[k]))
    good = [i for i, item in enumerate(done) if not isinstance(item, str)]
    failures = [(names[i], item) for i, item in enumerate(done) if isinstance(item, str)]
    return good, [done[i] for i in good], failures


@dataclass(frozen=True)
class GriddedReader:
    """Reads spectrum files onto one grid, many at a time; plain data, so it pickles to reader processes.

    Files whose wavelengths are equal (every file of a library) are put on
    the grid as one block, which costs a fifth of gridding them one by one
    and gives them bit for bit the same numbers.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name, start in (("star", 3800), ("red", 9000)):
    ...     _ = (folder / f"{name}.txt").write_text("".join(f"{start + i} 1.0\\n" for i in range(2000)))
    >>> star, red, missing = GriddedReader(Grid(), 0.4)([folder / "star.txt", folder / "red.txt", folder / "no.txt"])
    >>> star.mask.all(), type(red).__name__, type(missing).__name__
    (np.True_, 'FormatError', 'FormatError')
    """

    grid: Grid
    min_coverage: float  # smallest fraction of the grid a spectrum must cover
    default_medium: str = "air"  # medium of wavelengths no header describes
    columns: ColumnNames = field(default_factory=ColumnNames)  # named columns of FITS tables and text files
    templates: VelocityTemplates | None = None  # the model's radial-velocity templates (None: not measured)

    def __call__(self, paths) -> list:
        """For each of ``paths``, in order, its :class:`GriddedSpectrum` or the exception that stopped it.

        A file that is unreadable or covers too little of the grid gets a
        :class:`~deepscope.errors.FormatError`, and costs only itself.
        """
        # Imported even for no paths: reader processes fork from a process
        # that called this on none, and so start with the decoders imported.
        import astropy.io.fits  # noqa: F401
        import astropy.units  # noqa: F401
        import astropy.wcs  # noqa: F401

        from deepscope.spectra.io.files import read_spectrum

        done, spectra, names, read = [None] * len(paths), [], [], []
        shared = {}
        for i, path in enumerate(paths):
            try:
                spectrum = read_spectrum(path, self.default_medium, self.columns)
            except Exception as exc:  # noqa: BLE001 - the caller reports it against this file
                done[i] = exc
                continue
            # One array object for equal wavelengths is what makes gridded_spectra grid them together.
            spectrum.wave = shared.setdefault(spectrum.wave.tobytes(), spectrum.wave)
            spectra.append(spectrum)
            names.append(str(path))
            read.append(i)
        good, items, failures = gridded_spectra(spectra, names, self.grid, self.min_coverage, self.templates)
        for k, item in zip(good, items):
            done[read[k]] = item
        missing = iter(failures)
        for k in sorted(set(range(len(spectra))) - set(good)):
            done[read[k]] = FormatError(next(missing)[1])
        return done
