"""What a prediction's flag needs from each spectrum, computed apart from the network.

:meth:`~deepscope.spectra.predictor.SpectraPredictor.assess` is two steps:
:func:`spectrum_features` (continuum normalisation, the distance to the
nearest training template, the blue coverage: arithmetic on each spectrum
alone, no network) and the network with the confidence and flag rules that
use those features. Split so that bulk tables can run the first step in
reader processes beside the network (:mod:`deepscope.spectra.table_predict`):
on a GPU the network is nearly free and these steps are the work.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class SpectrumFeatures(NamedTuple):
    """A batch of gridded spectra made ready for the network and the flag rules."""

    x: np.ndarray  # (N, 2, n) float32: the network input (normalised flux, mask)
    snr: np.ndarray  # (N,) per-pixel S/N as read (quality.der_snr)
    blue_cover: np.ndarray  # (N,) fraction of the blue classification window covered
    median_flux: np.ndarray  # (N,) median flux as read
    mismatch: np.ndarray  # (N,) quality.template_mismatch; NaN where the checkpoint has no templates


def spectrum_features(items, grid, matcher=None) -> SpectrumFeatures:
    """Normalise a batch of :class:`~deepscope.spectra.preparation.gridded.GriddedSpectrum` and measure its flag inputs.

    Parameters
    ----------
    items : sequence of GriddedSpectrum
        At least one.
    grid : deepscope.spectra.preparation.grid.Grid
    matcher : deepscope.spectra.templates.TemplateMatcher, optional
        The checkpoint's training spectra; without it ``mismatch`` is NaN
        (no ``out_of_distribution`` flag).

    Returns
    -------
    SpectrumFeatures
    """
    from deepscope.spectra import quality
    from deepscope.spectra.preparation.grid import normalise

    x = normalise(np.stack([item.flux for item in items]), np.stack([item.mask for item in items]), grid)
    mismatch = (quality.template_mismatch(x, matcher.chi2(x).min(axis=1)) if matcher is not None
                else np.full(len(x), np.nan))
    return SpectrumFeatures(x=x, snr=np.array([item.snr for item in items], float),
                            blue_cover=quality.blue_coverage(x[:, 1], grid.wave),
                            median_flux=np.array([item.median_flux for item in items], float), mismatch=mismatch)
