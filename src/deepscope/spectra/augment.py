"""Training copies as surveys deliver spectra: a residual radial velocity, noise, low resolution, cut ends, tilts.

A classifier trained on clean library spectra at rest types whatever it is
shown with the confidence of a clean spectrum. :func:`survey_dataset` draws
each training copy afresh from a spectrum on the fine grid
(:class:`~deepscope.spectra.preparation.grid.FineGrid`, as read) with the
perturbations of :class:`SurveyAugment`, then prepares it as a spectrum to
classify is prepared (onto the model grid, undoing what is left of its
velocity, normalised), a batch at a time, and perturbs it as libraries
differ (:func:`jitter`, what every training copy gets); :func:`noisy_copies` makes the
fixed noisy copies of validation spectra that calibration is fitted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from deepscope.spectra.preparation.continuum import normalise, smooth
from deepscope.spectra.preparation.grid import C_KMS, FineGrid, Grid, air_wave, grid_rows, resample_rows

# Cut ends leave a copy at least this share of the grid (it needs 40% to be classified at all).
MIN_SPAN = 0.45


class ObservedSpectra(NamedTuple):
    """Training spectra on the fine grid as read."""

    flux: np.ndarray  # (N, fine.n)
    cover: np.ndarray  # (N, fine.n) share of each fine pixel with data
    fine: FineGrid

    def rows(self, index) -> ObservedSpectra:
        """The spectra of ``index`` (an index array or boolean mask)."""
        return ObservedSpectra(self.flux[index], self.cover[index], self.fine)


@dataclass(frozen=True)
class SurveyAugment:
    """What a training copy may have lost; each perturbation drawn independently per copy."""

    rv_sigma_kms: float = 5.0  # what the velocity step leaves: a Gaussian residual (km/s) ...
    rv_wide_share: float = 0.1  # ... and, for this share of copies, one of rv_wide_kms (a failed or confused one,
    rv_wide_kms: float = 40.0  # e.g. part of the 83 km/s of vacuum wavelengths read as air)
    noise_share: float = 0.5  # copies given noise, at a S/N per fine pixel log-uniform in snr_range
    snr_range: tuple[float, float] = (4.0, 100.0)
    blur_share: float = 0.4  # copies blurred to a resolving power log-uniform in resolution_range
    resolution_range: tuple[float, float] = (500.0, 5000.0)
    blue_cut_share: float = 0.15  # copies starting late, their blue edge uniform in blue_edge_range (A)
    blue_edge_range: tuple[float, float] = (3850.0, 4400.0)
    red_cut_share: float = 0.15  # copies ending early, their red edge uniform in red_edge_range (A)
    red_edge_range: tuple[float, float] = (4500.0, 5550.0)
    tilt_share: float = 0.5  # copies whose flux calibration is off by exp(a u + b (u^2 - 1/3)), u in [-1, 1]
    tilt_sigma: tuple[float, float] = (0.3, 0.15)  # Gaussian spread of a and b

    def as_meta(self) -> dict:
        """Plain data for checkpoint metadata and run settings."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def load_observed(paths: Sequence[str | Path], grid: Grid = Grid(), workers: int = 2) -> ObservedSpectra:
    """Read spectra onto the fine grid of ``grid`` as read (every path must be readable: those training loaded)."""
    from deepscope.spectra.io.files import read_spectrum

    fine = FineGrid(grid)

    def load(path):
        spectrum = read_spectrum(path)
        return resample_rows(air_wave(spectrum), spectrum.flux[None], spectrum.valid[None], fine.edges)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(load, paths))
    if not results:
        return ObservedSpectra(np.zeros((0, fine.n)), np.zeros((0, fine.n)), fine)
    return ObservedSpectra(np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]), fine)


def flux_level(flux: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Each row's median absolute flux where it has data (0 for none): the signal of its S/N."""
    return np.nan_to_num(np.nanmedian(np.where(cover >= 0.5, np.abs(flux), np.nan), axis=1))


def add_noise(flux: np.ndarray, level: np.ndarray, snr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows with Gaussian noise to a S/N per pixel of ``snr`` against their ``level`` (:func:`flux_level`)."""
    return flux + rng.normal(0.0, 1.0, flux.shape) * (level / snr)[:, None]


def perturb(flux: np.ndarray, cover: np.ndarray, fine: FineGrid, augment: SurveyAugment,
            rng: np.random.Generator, red_end: np.ndarray | None = None,
            level: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One survey-like copy of each row on the fine grid: ``(flux, cover, rv_residual_kms)``.

    ``red_end`` (Angstrom, per row; inf for none) is where a row will be cut
    anyway (a short copy): cuts that would leave it less than
    :data:`MIN_SPAN` of the grid are not made. ``level``: the rows'
    :func:`flux_level`, if known.

    Examples
    --------
    >>> fine = FineGrid(Grid())
    >>> flux, cover = np.ones((3, fine.n)), np.ones((3, fine.n))
    >>> out, covered, residual = perturb(flux, cover, fine, SurveyAugment(), np.random.default_rng(0))
    >>> out.shape, covered.shape, residual.shape
    ((3, 1185), (3, 1185), (3,))
    """
    n_rows = len(flux)
    flux, cover = flux.copy(), cover.copy()
    wave = fine.wave

    def chosen(share):
        return np.flatnonzero(rng.random(n_rows) < share)

    u = (fine.log_wave - fine.log_wave.mean()) / (fine.log_wave[-1] - fine.log_wave.mean())
    tilted = chosen(augment.tilt_share)
    a, b = (rng.normal(0.0, sigma, (tilted.size, 1)) for sigma in augment.tilt_sigma)
    flux[tilted] *= np.exp(a * u + b * (u ** 2 - 1.0 / 3.0))
    for i in chosen(augment.blur_share):
        resolution = np.exp(rng.uniform(*np.log(augment.resolution_range)))
        flux[i] = smooth(flux[i], cover[i] >= 0.5, C_KMS / resolution / fine.kms_per_pixel)
    noisy = chosen(augment.noise_share)
    level = flux_level(flux, cover) if level is None else level
    flux[noisy] = add_noise(flux[noisy], level[noisy], np.exp(rng.uniform(*np.log(augment.snr_range), noisy.size)),
                            rng)
    end = np.full(n_rows, np.inf) if red_end is None else np.asarray(red_end, float)
    lo, hi = np.zeros(n_rows), np.full(n_rows, np.inf)
    blue, red = chosen(augment.blue_cut_share), chosen(augment.red_cut_share)
    lo[blue] = rng.uniform(*augment.blue_edge_range, blue.size)
    hi[red] = rng.uniform(*augment.red_edge_range, red.size)
    cut = np.where((wave[None] < lo[:, None]) | (wave[None] > hi[:, None]), 0.0, cover)
    # What a row keeps of the model grid's range (up to its red end): too little, and it stays whole.
    on_grid = slice(fine.pad, fine.n - fine.pad)
    kept = ((cut[:, on_grid] >= 0.5) & (wave[None, on_grid] <= end[:, None])).mean(axis=1)
    cover = np.where((kept >= MIN_SPAN)[:, None], cut, cover)
    residual = rng.normal(0.0, augment.rv_sigma_kms, n_rows)
    wide = chosen(augment.rv_wide_share)
    residual[wide] = rng.normal(0.0, augment.rv_wide_kms, wide.size)
    return flux, cover, residual


def prepare_observed(flux: np.ndarray, cover: np.ndarray, fine: FineGrid, rv: np.ndarray | None = None,
                     short: np.ndarray | None = None, red_limit: float | None = None) -> np.ndarray:
    """Fine-grid rows as the network sees them ``(N, 2, grid.n)``: moved by ``rv`` (km/s), onto the grid, normalised.

    Rows of ``short`` (bool) are treated as ending at ``red_limit``, as a
    library spectrum's short copy is (one that would keep too little stays whole).
    """
    grid = fine.grid
    gridded, mask, _ = grid_rows(fine.wave, flux, cover >= 0.5, grid, 0.0, [""] * len(flux), rv=rv)
    if short is not None and red_limit is not None:
        cut = mask & (grid.wave <= red_limit)
        mask = np.where((np.asarray(short) & (cut.mean(axis=1) >= MIN_SPAN))[:, None], cut, mask)
    return normalise(gridded, mask, grid)


def noisy_copies(observed: ObservedSpectra, snr: float, seed: int) -> np.ndarray:
    """Prepared copies of ``observed`` with noise to a S/N per fine pixel of ``snr`` (a fixed draw from ``seed``).

    Examples
    --------
    >>> fine = FineGrid(Grid())
    >>> x = noisy_copies(ObservedSpectra(np.ones((2, fine.n)), np.ones((2, fine.n)), fine), 10.0, 0)
    >>> x.shape, round(float(x[0, 0].std()), 2) > 0
    ((2, 2, 580), True)
    """
    rng = np.random.default_rng(seed)
    flux = add_noise(observed.flux, flux_level(observed.flux, observed.cover), np.full(len(observed.flux), snr), rng)
    return prepare_observed(flux, observed.cover, observed.fine)


def jitter(item):
    """A copy of one prepared spectrum ``(2, n)`` tensor perturbed as libraries differ from one another.

    Shifted by up to one pixel, its red end cut for one in five (as libr18's
    3800-4620 A coverage does), half of them blurred by 0.5 to 3 pixels
    (libraries differ in resolution even after smoothing), the continuum
    tilted slightly (as differently as libraries' come out of normalisation)
    and noise added at S/N 15 to 200 of the normalised flux.

    Examples
    --------
    >>> import torch
    >>> item = torch.stack([torch.zeros(580), torch.ones(580)])
    >>> out = jitter(item)
    >>> out.shape, bool(item[0].eq(0).all())
    (torch.Size([2, 580]), True)
    """
    import torch

    item = item.clone()
    shift = int(torch.randint(-1, 2, ()).item())
    if shift:
        item = torch.roll(item, shift, dims=1)
        item[:, 0 if shift > 0 else -1] = 0.0
    if torch.rand(()) < 0.2:
        cut = int(item.shape[1] * (0.45 + 0.5 * float(torch.rand(()))))
        item[:, cut:] = 0.0
    if torch.rand(()) < 0.5:
        # A Gaussian of sigma 0.5 to 3 pixels, the mask-aware one that normalise() uses.
        fwhm = 2.3548 * (0.5 + 2.5 * float(torch.rand(())))
        blurred = smooth(item[0].numpy(), item[1].numpy() > 0, fwhm)
        item[0] = torch.from_numpy(blurred.astype(np.float32)) * item[1]
    ramp = torch.linspace(-1.0, 1.0, item.shape[1])
    tilt = 1.0 + 0.05 * float(torch.randn(())) * ramp + 0.03 * float(torch.randn(())) * (ramp ** 2 - 0.33)
    item[0] = ((1.0 + item[0]) * tilt - 1.0) * item[1]
    sigma = 1.0 / (15.0 + 185.0 * float(torch.rand(())))
    item[0] = (item[0] + sigma * torch.randn_like(item[0])) * item[1]
    return item


def survey_dataset(observed: ObservedSpectra, targets: dict, augment: SurveyAugment = SurveyAugment(),
                   red_limit: float | None = None):
    """A torch dataset of survey-like training copies, drawn afresh each time an item is asked for.

    Parameters
    ----------
    observed : ObservedSpectra
        ``N`` training spectra.
    targets : dict
        :func:`~deepscope.spectra.targets.type_targets` of the ``N`` spectra.
    augment : SurveyAugment
    red_limit : float, optional
        With one, the dataset holds ``2 N`` items: each spectrum, then each
        as if it ended at ``red_limit`` (Angstrom), its continuum fitted to
        the short range alone.

    Returns
    -------
    torch.utils.data.Dataset
        Items ``(x, targets)`` as :func:`deepscope.spectra.train.make_dataset`
        gives them; a DataLoader's batch is drawn and prepared in one go
        (``__getitems__``), the random numbers seeded from torch's generator.
    """
    import torch
    from torch.utils.data import Dataset

    flux, cover, fine = observed
    level = flux_level(flux, cover)
    copies = 1 if red_limit is None else 2
    y = {k: torch.from_numpy(np.concatenate([np.asarray(v, np.float32)] * copies))
         for k, v in targets.items() if k != "usable"}

    class _Survey(Dataset):
        def __len__(self):
            return copies * len(flux)

        def __getitem__(self, i):
            return self.__getitems__([i])[0]

        def __getitems__(self, indices):
            indices = np.asarray(indices)
            rows = indices % len(flux)
            short = indices >= len(flux)
            # From torch's generator, so the trainer's seeding makes a run's copies reproducible.
            rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, ()).item()))
            noisy, covered, residual = perturb(flux[rows], cover[rows], fine, augment, rng,
                                               np.where(short, red_limit or np.inf, np.inf), level[rows])
            x = torch.from_numpy(prepare_observed(noisy, covered, fine, residual, short, red_limit))
            # Then as libraries differ, as every training copy is (make_dataset).
            return [(jitter(x[k]), {name: v[i] for name, v in y.items()}) for k, i in enumerate(indices)]

    return _Survey()
