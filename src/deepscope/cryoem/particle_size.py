"""The particle diameter and polarity read from the micrographs themselves.

Two steps, both on the micrograph binned to about :data:`ESTIMATE_SIDE`
pixels. A blob filter (Laplacian of Gaussian) swept over scales finds the
scale and sign at which the image is most lopsided: particles are blobs of
one sign, noise and ice fluctuate both ways. Then the boxes around the
strongest blobs of a somewhat larger size (:data:`REFINE_START`) are
averaged and rotationally averaged: the particle's dark core crosses back
to the background level at a radius of :data:`CORE_RADIUS_FRACTION` of its
diameter, for beta-galactosidase in denoised micrographs, the ribosome set
and raw simulated ones alike (docs/cryoem.md, "Polarity and particle
size"). Two rounds of re-detection at the refined size settle it.

:func:`estimate_micrograph_size` is ``--diameter auto``;
:func:`check_diameter` compares a given diameter with the estimate.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepscope.errors import DiameterWarning, FormatError, InputError

log = logging.getLogger(__name__)

# Side, in pixels, of the binned micrograph the size is estimated on: particles from about
# 1/100 to 1/8 of the micrograph stay resolved, and a 4096 px JPEG decodes at 1/4.
ESTIMATE_SIDE = 1024
# Radius, in diameters, at which the rotational average of the particles' core returns to
# the background level (docs/cryoem.md, "Polarity and particle size").
CORE_RADIUS_FRACTION = 0.33
# Blob-filter scales swept, in pixels of the binned micrograph (sigma; a blob of diameter
# 2.83 sigma responds most).
SIGMAS = np.geomspace(1.0, 40.0, 24)
# Refinement rounds: blobs re-detected at the size found, profile re-measured.
ROUNDS = 2
# The refinement starts this much above the sweep's size: from above it settles on the particle,
# from the sweep's own (often small) size it can stay on a smaller core, e.g. a CTF fringe.
REFINE_START = 1.25
# A given diameter this many times larger or smaller than the estimate is suspicious.
MISMATCH_FACTOR = 1.5
# Micrographs read by --diameter auto and the check; their median is used.
MICROGRAPHS_READ = 3


@dataclass(frozen=True)
class SizeEstimate:
    """A particle size read from the pixels."""

    diameter: float  # in pixels of the image it was measured on (of the file, from estimate_micrograph_size)
    polarity: str  # "dark" or "bright": the particles' sign against the ice
    micrographs: tuple[str, ...] = ()  # the files it was read from, if any


def _pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``image`` and its successive 2x box-binnings (a level stops halving below 64 px)."""
    pyramid = [image]
    while len(pyramid) < levels and min(pyramid[-1].shape) >= 128:
        top = pyramid[-1]
        rows, cols = (n - n % 2 for n in top.shape)
        pyramid.append(top[:rows, :cols].reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3)))
    return pyramid


def _level_for(sigma: float, pyramid: list[np.ndarray], finest: float = 1.5) -> int:
    """The coarsest pyramid level at which a filter of ``sigma`` (finest-level pixels) is still ``finest`` px."""
    return int(min(len(pyramid) - 1, max(0, np.floor(np.log2(sigma / finest)))))


def _core_diameter(image: np.ndarray, diameter: float, sign: float) -> float | None:
    """Diameter implied by the rotational average around the strongest blobs of size ``diameter``.

    None when too few blobs fit or the average has no core of the right sign.
    """
    import pandas as pd
    from scipy import ndimage
    from skimage.feature import peak_local_max

    from deepscope.cryoem.recentre import recentre_picks

    response = sign * ndimage.gaussian_laplace(image, 0.8 * diameter / (2 * np.sqrt(2)))
    reach = int(diameter) + 2
    if min(image.shape) <= 2 * reach + 2:
        return None
    peaks = peak_local_max(response, min_distance=max(1, int(0.5 * diameter)), exclude_border=reach,
                           num_peaks=400)
    if len(peaks) < 5:
        return None
    smooth = ndimage.gaussian_filter(image, max(0.5, diameter / 20))
    # blob peaks sit on a particle's darkest lobe, not its centre: centred on their own rotational
    # average first, as 2D classification centres them, the average is the particle's
    centred = recentre_picks(smooth, pd.DataFrame({"x": peaks[:, 1], "y": peaks[:, 0]}), diameter)
    rows = np.clip(np.rint(centred["y"].to_numpy()).astype(int), reach, image.shape[0] - reach - 1)
    cols = np.clip(np.rint(centred["x"].to_numpy()).astype(int), reach, image.shape[1] - reach - 1)
    mean_box = np.mean([smooth[r - reach:r + reach + 1, c - reach:c + reach + 1] for r, c in zip(rows, cols)],
                       axis=0)
    dy, dx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    radius = np.rint(np.hypot(dx, dy)).astype(int).ravel()
    profile = -sign * np.bincount(radius, mean_box.ravel()) / np.bincount(radius)
    # the particle's side of the background is positive: background = the outer ring's level
    profile = profile[:reach + 1] - profile[int(0.8 * reach):reach + 1].mean()
    crossing = np.flatnonzero(profile <= 0)
    if len(crossing) == 0 or crossing[0] == 0:
        return None
    r = crossing[0]
    # linear interpolation between the last positive and the first non-positive radius
    return float((r - 1 + profile[r - 1] / (profile[r - 1] - profile[r])) / CORE_RADIUS_FRACTION)


def estimate_particle_size(image: np.ndarray) -> SizeEstimate | None:
    """Estimate the particle diameter (pixels of ``image``) and polarity of a micrograph.

    Parameters
    ----------
    image : numpy.ndarray
        2-D micrograph, best binned so particles are 10-100 px across
        (:data:`ESTIMATE_SIDE`).

    Returns
    -------
    SizeEstimate or None
        None when the image shows no particle-like blobs.

    Examples
    --------
    >>> print(estimate_particle_size(np.zeros((256, 256))))
    None
    """
    from deepscope.cryoem.preprocess import blob_skewness, normalize

    image = normalize(image, clip=6.0)
    sigmas = SIGMAS[2.83 * SIGMAS * 4 < min(image.shape)]
    if len(sigmas) < 3:
        return None
    # The skew is scale-free, so a large filter runs on a binned copy: the same answer, far cheaper.
    pyramid = _pyramid(image, 6)
    lopsided = np.array([blob_skewness(pyramid[k], s / 2**k) for s in sigmas
                         for k in [_level_for(s, pyramid, 2.0)]])
    strength = np.abs(lopsided)
    # The smallest scale at a local maximum of at least half the strongest: larger scales see
    # few independent blobs (ice gradients, carbon, striped borders) and their skew is noisy.
    peaks = [i for i in range(len(sigmas))
             if strength[i] >= 0.5 * strength.max()
             and strength[i] >= strength[max(i - 1, 0)] and strength[i] >= strength[min(i + 1, len(sigmas) - 1)]]
    if not peaks or strength.max() < 0.02:
        return None
    first = peaks[0]
    sign = float(np.sign(lopsided[first]))
    diameter = REFINE_START * 2 * np.sqrt(2) * float(sigmas[first])
    for _ in range(ROUNDS):
        # on a copy binned while the particle stays 16 px or more across
        k = _level_for(diameter, pyramid, 16.0)
        refined = _core_diameter(pyramid[k], diameter / 2**k, sign)
        if refined is None:
            break
        diameter = refined * 2**k
    return SizeEstimate(diameter=diameter, polarity="dark" if sign > 0 else "bright")


def estimate_micrograph_size(paths: list[str | Path], micrographs: int = MICROGRAPHS_READ) -> SizeEstimate:
    """The particle diameter (in pixels of the files) and polarity of up to ``micrographs`` of ``paths``.

    Each is read binned to about :data:`ESTIMATE_SIDE` pixels; the median
    diameter and the majority polarity are returned. Micrographs that
    cannot be read are passed over (the batch that picks them reports them).

    Raises
    ------
    InputError
        If no micrograph is readable and shows particle-like blobs.

    Examples
    --------
    >>> from deepscope.samples import sample_dir
    >>> found = estimate_micrograph_size([sample_dir("cryoem", "Falcon_2012_06_12-14_33_35_0.jpg")])
    >>> found.polarity, round(found.diameter / 27, 1)  # EMPIAR-10017 binned 4x: its labels say 27 px
    ('dark', 1.0)
    """
    from deepscope.cryoem.io import read_micrograph_reduced
    from deepscope.cryoem.preprocess import rescale

    found, read = [], []
    for path in paths:
        if len(read) == micrographs:
            break
        try:
            raw, factor = read_micrograph_reduced(path, 4)
            width = raw.shape[1] * factor  # of the file at full resolution
            if factor > max(1, width // ESTIMATE_SIDE):
                # a JPEG decoded smaller than the estimate needs: decode it again, less reduced
                raw, factor = read_micrograph_reduced(path, max(1, int(width // ESTIMATE_SIDE)))
        except FormatError as exc:
            log.info("size not read from %s", exc)
            continue
        read.append(Path(path).name)
        scale = min(1.0, ESTIMATE_SIDE / width)
        estimate = estimate_particle_size(rescale(raw, scale * factor))
        if estimate is not None:
            found.append(SizeEstimate(estimate.diameter / scale, estimate.polarity))
            log.info("%s: particles about %.0f px across, %s", read[-1], found[-1].diameter, found[-1].polarity)
    if not found:
        what = ", ".join(read) if read else "no readable micrograph"
        msg = f"{what}: no particle-like blobs to estimate the diameter from; give --diameter"
        raise InputError(msg)
    polarities = [f.polarity for f in found]
    return SizeEstimate(float(np.median([f.diameter for f in found])),
                        max(set(polarities), key=polarities.count), tuple(read))


def check_diameter(diameter: float, estimate: float, strict: bool = False, where: str = "") -> None:
    """Warn (or with ``strict`` refuse) when ``diameter`` is :data:`MISMATCH_FACTOR` times off the estimate.

    Raises
    ------
    InputError
        With ``strict``, on a mismatch.

    Examples
    --------
    >>> check_diameter(108.0, 100.0)
    >>> try:
    ...     check_diameter(108.0, 54.0, strict=True)
    ... except InputError as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    --diameter 108 px is 2.0x the particle size estimated from the micrographs (54 px); check the binning, or give
    --diameter auto
    """
    ratio = diameter / estimate
    if 1 / MISMATCH_FACTOR <= ratio <= MISMATCH_FACTOR:
        return
    times = f"{ratio:.1f}x" if ratio > 1 else f"1/{1 / ratio:.1f} of"
    msg = (f"{where}--diameter {diameter:g} px is {times} the particle size estimated from the micrographs "
           f"({estimate:.0f} px); check the binning, or give --diameter auto")
    if strict:
        raise InputError(msg)
    warnings.warn(msg, DiameterWarning, stacklevel=2)


def resolve_diameter(paths: list[str | Path], diameter: float | str, strict: bool = False) -> float:
    """The particle diameter to pick with: estimated for ``"auto"``, else ``diameter`` checked against the estimate.

    Parameters
    ----------
    paths : list of str or Path
        Micrograph files (the first :data:`MICROGRAPHS_READ` are read for
        ``"auto"``, the first one for the check).
    diameter : float or "auto"
        In pixels of the micrographs.
    strict : bool
        Refuse, rather than warn about, a diameter :data:`MISMATCH_FACTOR`
        times off the estimate (:func:`check_diameter`).

    Returns
    -------
    float

    Raises
    ------
    InputError
        For ``"auto"`` without readable particles or files; with ``strict``,
        on a mismatch.
    """
    if diameter == "auto":
        if not paths:
            msg = ("--diameter auto reads micrograph files, and there are none among the inputs "
                   "(tar members are not read)")
            raise InputError(msg)
        found = estimate_micrograph_size(paths)
        log.info("--diameter auto: %.1f px (median of %s), particles %s", found.diameter,
                 ", ".join(found.micrographs), found.polarity)
        return found.diameter
    if paths:
        try:
            found = estimate_micrograph_size(paths, 1)
        except InputError:
            return float(diameter)  # no particle-like blobs: nothing to compare with
        check_diameter(float(diameter), found.diameter, strict, where=f"{', '.join(found.micrographs)}: ")
    return float(diameter)
