"""External bar evidence turned into per-galaxy loss weights and soft targets for training.

Experiment, not shipped (see README.md here); was ``deepscope.galaxy.training_evidence``.

The Galaxy Zoo 2 labels of ``sdss_gz2_bars`` are raw vote fractions; many
"barred" galaxies show no bar (DATA.md). Two catalogues, matched on the sky
with the product's own cross-match, say which labels to trust more or less:

- Hoyle et al. (2011): bars *drawn* by at least three volunteers. A matched
  barred galaxy is a confirmed bar (:attr:`TrainingEvidence.confirmed_weight`).
  A barred galaxy that Hoyle's volunteers would have seen but nobody drew a
  bar in is doubtful (:attr:`TrainingEvidence.doubtful_weight`). Hoyle's
  sample covers only part of the sky (RA about 90-262 deg) and only galaxies
  large on the sky (nearby and bright), so "would have seen" means: near a
  Hoyle galaxy on the sky and at least as large as most matched Hoyle bars
  (:func:`hoyle_coverage`). Elsewhere, no drawing says nothing.
- Willett et al. (2013) Table 5, Stripe 82 co-adds: with enough bar-question
  votes, the co-add bar fraction becomes the soft target; a galaxy most
  co-add voters call edge-on (where no bar can be seen and GZ2 barely asked
  the bar question) is left out of training.

Evidence weights are multiplied into the size-balancing weights, which then
rebalance each size bin (:func:`balanced_weights`), so up-weighting the large
Hoyle bars does not bring the size shortcut back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from deepscope.galaxy.apparent_size import size_bins
from deepscope.galaxy.bar_evidence import MATCH_RADIUS_ARCSEC, match_catalogue

_EDGE_ON = "t02_edgeon_a04_yes_fraction"
_BAR_VOTES, _NO_BAR_VOTES = "t03_bar_a06_bar_count", "t03_bar_a07_no_bar_count"


@dataclass
class TrainingEvidence:
    """Which external catalogues to use in training, and how much to trust them."""

    hoyle: str | Path | None = None  # Hoyle et al. (2011) drawn-bar catalogue
    stripe82: str | Path | None = None  # Willett et al. (2013) Table 5 (Stripe 82 co-add votes)
    confirmed_weight: float = 3.0  # loss weight of a GZ2-barred galaxy whose bar volunteers drew
    doubtful_weight: float = 0.5  # ... of a GZ2-barred galaxy Hoyle covered but nobody drew a bar in
    coverage_quantile: float = 0.25  # Hoyle covers galaxies at least this quantile of its matched bars' sizes
    footprint_deg: float = 2.0  # ... and within this distance of a Hoyle galaxy on the sky
    stripe82_min_votes: int = 5  # co-add bar-question votes needed to use their fraction as the target
    edge_on_from: float = 0.5  # co-add edge-on vote fraction from which a galaxy is left out
    radius_arcsec: float = MATCH_RADIUS_ARCSEC  # sky cross-match radius

    @property
    def given(self) -> bool:
        """True when at least one catalogue is named."""
        return self.hoyle is not None or self.stripe82 is not None

    def describe(self) -> dict:
        """Plain-data record of the settings, for the run directory and checkpoint."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def hoyle_coverage(ra: ArrayLike, dec: ArrayLike, sizes: ArrayLike, confirmed: ArrayLike,
                   catalogue_ra: ArrayLike, catalogue_dec: ArrayLike, quantile: float = 0.25,
                   footprint_deg: float = 2.0) -> np.ndarray:
    """Which galaxies the Hoyle et al. (2011) volunteers would have been shown.

    Parameters
    ----------
    ra, dec : array-like of float
        Positions of the sample, degrees.
    sizes : array-like
        Apparent sizes (bright-pixel counts).
    confirmed : array-like of bool
        Matched in the catalogue.
    catalogue_ra, catalogue_dec : array-like of float
        Positions of every catalogue galaxy, degrees.
    quantile : float
        A galaxy smaller than this quantile of the confirmed galaxies' sizes
        is taken to be outside Hoyle's (nearby, bright) parent sample.
    footprint_deg : float
        Largest distance to the nearest catalogue galaxy inside the footprint.

    Returns
    -------
    numpy.ndarray of bool
        All False when nothing is confirmed (no size scale to compare with).

    Examples
    --------
    >>> hoyle_coverage([10, 10, 10, 200], [0, 0, 0, 0], [900, 500, 1000, 900], [True, False, False, False],
    ...                [10.0], [0.5], quantile=0.0).tolist()
    [True, False, True, False]
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    sizes, confirmed = np.asarray(sizes, float), np.asarray(confirmed, bool)
    if not confirmed.any():
        return np.zeros(len(sizes), bool)
    sample = SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg)
    catalogue = SkyCoord(np.asarray(catalogue_ra, float) * u.deg, np.asarray(catalogue_dec, float) * u.deg)
    _, separation, _ = sample.match_to_catalog_sky(catalogue)
    in_footprint = separation.to_value(u.deg) <= footprint_deg
    return in_footprint & (sizes >= np.quantile(sizes[confirmed], quantile))


def evidence_targets(ra: ArrayLike, dec: ArrayLike, labels: ArrayLike, sizes: ArrayLike,
                     evidence: TrainingEvidence) -> tuple[np.ndarray, np.ndarray, dict]:
    """Loss weights and soft bar targets of training galaxies from external catalogues.

    Parameters
    ----------
    ra, dec : array-like of float
        Positions of the training galaxies, degrees.
    labels : array-like of {0, 1}
        Catalogue labels (1 = barred).
    sizes : array-like
        Apparent sizes (bright-pixel counts).
    evidence : TrainingEvidence

    Returns
    -------
    weights : numpy.ndarray of float32
        Relative loss weight per galaxy; 0 for galaxies to leave out (edge-on).
    p_bar : numpy.ndarray of float32
        Target probability of a bar: the label, or the Stripe 82 co-add
        bar fraction where it rests on enough votes.
    counts : dict
        ``confirmed``, ``covered``, ``doubtful``, ``soft``, ``edge_on``:
        how many galaxies each rule touched.

    Raises
    ------
    InputError
        If a catalogue cannot be read or lacks its columns.
    """
    import pandas as pd

    from deepscope.core.files import read_table
    from deepscope.galaxy.crossmatch import coordinate_columns

    labels, sizes = np.asarray(labels), np.asarray(sizes, float)
    weights = np.ones(len(labels))
    p_bar = labels.astype(float)
    counts = {}
    if evidence.hoyle is not None:
        table = read_table(evidence.hoyle)
        matched = match_catalogue(ra, dec, evidence.hoyle, radius_arcsec=evidence.radius_arcsec, table=table)
        confirmed = matched["sep_arcsec"].notna().to_numpy() & (labels == 1)
        ra_column, dec_column = coordinate_columns(table, source=str(evidence.hoyle))
        covered = hoyle_coverage(ra, dec, sizes, confirmed, table[ra_column], table[dec_column],
                                 evidence.coverage_quantile, evidence.footprint_deg)
        doubtful = covered & (labels == 1) & ~confirmed
        weights[confirmed] = evidence.confirmed_weight
        weights[doubtful] = evidence.doubtful_weight
        counts |= {"confirmed": int(confirmed.sum()), "covered": int(covered.sum()),
                   "doubtful": int(doubtful.sum())}
    if evidence.stripe82 is not None:
        matched = match_catalogue(ra, dec, evidence.stripe82, (_EDGE_ON, _BAR_VOTES, _NO_BAR_VOTES),
                                  evidence.radius_arcsec)
        edge_on, bar, no_bar = (pd.to_numeric(matched[c], errors="coerce").to_numpy(float, na_value=np.nan)
                                for c in (_EDGE_ON, _BAR_VOTES, _NO_BAR_VOTES))
        votes = bar + no_bar
        # NaN (unmatched) compares False, so only matched galaxies change.
        soft = votes >= evidence.stripe82_min_votes
        p_bar[soft] = bar[soft] / votes[soft]
        dropped = edge_on >= evidence.edge_on_from
        weights[dropped] = 0.0
        counts |= {"soft": int(np.sum(soft & ~dropped)), "edge_on": int(dropped.sum())}
    return weights.astype(np.float32), p_bar.astype(np.float32), counts



def balanced_weights(sizes: ArrayLike, labels: ArrayLike, base_weights: ArrayLike, n_bins: int = 5,
                     max_weight: float = 4.0) -> np.ndarray:
    """Size-balancing weights (as :func:`deepscope.galaxy.apparent_size.size_balancing_weights`) on top of
    relative evidence weights: within a class and size bin weights keep their ratios, and the classes'
    totals are balanced in every bin.

    Examples
    --------
    >>> balanced_weights([1, 2, 3, 4], [0, 0, 1, 1], [1, 1, 3, 1], n_bins=1).tolist()
    [1.0, 1.0, 1.5, 0.5]
    """
    import pandas as pd

    frame = pd.DataFrame({"bin": size_bins(sizes, n_bins), "label": np.asarray(labels),
                          "base": np.asarray(base_weights, float)})
    bin_total = frame.groupby("bin")["base"].transform("sum").to_numpy()
    class_total = frame.groupby(["bin", "label"])["base"].transform("sum").to_numpy()
    factor = np.minimum(bin_total / (2.0 * np.where(class_total > 0, class_total, 1.0)), max_weight)
    weights = np.where(class_total > 0, frame["base"].to_numpy() * factor, 0.0)
    return (weights / weights.mean()).astype(np.float32)
