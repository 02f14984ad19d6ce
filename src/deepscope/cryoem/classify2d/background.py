"""Each pick judged alone: does it match the particle classes better than empty background does?

A class average shows what most of its members share, so a false pick that
joined a class of particles (a box of empty ice beside them, a centre moved
off its particle) is hidden there: the class rule of
:mod:`~deepscope.cryoem.classify2d.junk` keeps it. Each pick is therefore
also scored alone: its best normalised correlation, over in-plane angles,
small shifts and the particle-like classes, with class averages made from
the other half of the particles (half-sets, as RELION splits them, so that
no pick is compared with an average that contains it). Background boxes cut
from the same micrographs, centred at least one particle diameter from every
pick, are scored the same way against both half-sets; they stand for what a
false pick in empty ice scores. A pick that matches no better than
:data:`BACKGROUND_QUANTILE` of the background boxes is junk. The threshold
comes from each data set's own background (target-decoy, as proteomics calls
it), not from a constant tuned on one protein.
"""

import numpy as np
import pandas as pd

# A pick must match the particle classes better than this fraction of the
# background boxes. Chosen on four EMPIAR-10017 micrographs that are not
# among those reported (benchmarks/bench_cryoem_planted.py --split
# calibration, 64-px images): 0.85 threw out 86% of planted background picks
# and 5% of true ones there (class rule alone: 63% and 2%); 0.9 89% and 8%,
# 0.8 82% and 4%.
BACKGROUND_QUANTILE = 0.85
# Fewer background boxes than this give no stable quantile: the test is skipped.
MIN_BACKGROUND_BOXES = 50
# More add time, not precision.
MAX_BACKGROUND_BOXES = 2000
# Random spots tried per background box wanted; dense micrographs have few free spots.
TRIES_PER_BOX = 20
PICK_RULE = ("a pick in a particle class is junk too when its correlation with the other half-set's particle "
             "class averages is no better than {quantile:.0%} of background boxes' (centred at least one "
             "diameter from every pick)")


def background_positions(picks_xy: np.ndarray, shape: tuple[int, int], diameter: float, box: int, count: int,
                         rng: np.random.Generator) -> np.ndarray:
    """Up to ``count`` random box centres in a micrograph, each at least ``diameter`` from every pick.

    Parameters
    ----------
    picks_xy : numpy.ndarray
        ``(n, 2)`` pick centres (x, y) in micrograph pixels.
    shape : tuple of int
        The micrograph's ``(rows, columns)``.
    diameter, box : float, int
        Particle diameter and box side in micrograph pixels; whole boxes lie inside the micrograph.
    count : int
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``(m, 2)`` centres (x, y), ``m <= count`` (fewer where the picks leave little room).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> spots = background_positions(np.array([[50.0, 50.0]]), (100, 100), 30, 20, 10, rng)
    >>> len(spots), bool((np.hypot(*(spots - 50).T) >= 30).all())
    (10, True)
    """
    from scipy.spatial import cKDTree

    margin = box / 2 + 1
    high = np.array([shape[1] - 1 - margin, shape[0] - 1 - margin])
    if count <= 0 or np.any(high <= margin):
        return np.empty((0, 2))
    spots = rng.uniform(margin, high, size=(count * TRIES_PER_BOX, 2))
    if len(picks_xy):
        spots = spots[cKDTree(picks_xy).query(spots)[0] >= diameter]
    return spots[:count]


def background_tables(pairs, diameter: float, box: int, rng: np.random.Generator, count: int | None = None) -> list:
    """Background box centres for every ``(micrograph, picks)`` pair.

    ``count`` per micrograph; by default as many as its picks, in all at
    most :data:`MAX_BACKGROUND_BOXES` (one per micrograph where there are
    more micrographs). Returns a list of ``(micrograph, pandas.DataFrame)``
    with ``x``, ``y`` (tables may be empty).
    """
    from deepscope.cryoem.io import read_micrograph_header

    per_micrograph = max(1, MAX_BACKGROUND_BOXES // max(1, len(pairs)))
    tables = []
    for micrograph, picks in pairs:
        wanted = min(len(picks), per_micrograph) if count is None else count
        xy = np.empty((0, 2))
        if wanted:
            shape, _ = read_micrograph_header(micrograph)
            xy = background_positions(picks[["x", "y"]].to_numpy(dtype=float), shape, diameter, box, wanted, rng)
        tables.append((micrograph, pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]})))
    return tables


def half_set_matches(data, classes, particle_classes, n_rings: int, max_shift: int, half, background):
    """Correlation of each pick with the other half-set's particle-class averages, and of each background box.

    Parameters
    ----------
    data : torch.Tensor
        ``(n, size, size)`` masked pick images, as classified.
    classes : deepscope.cryoem.classify2d.clustering.Classes
        Their classification (labels, angles, shifts).
    particle_classes : numpy.ndarray
        ``(k,)`` bool, the classes that are not junk.
    n_rings, max_shift : int
        As the classification used.
    half : numpy.ndarray
        ``(n,)`` 0 or 1: each pick's half-set.
    background : torch.Tensor
        ``(m, size, size)`` masked background images.

    Returns
    -------
    picks, background : numpy.ndarray
        ``(n,)`` and ``(m,)``: best normalised correlation; a background box's
        is the mean of its best against each half-set.
    """
    import torch

    from deepscope.cryoem.classify2d.align import ShiftedSpectra, align, transform
    from deepscope.cryoem.classify2d.clustering import class_averages

    labels = torch.as_tensor(classes.labels, device=data.device)
    aligned = transform(data, torch.as_tensor(np.radians(classes.angles), dtype=torch.float32, device=data.device),
                        torch.as_tensor(classes.shifts, dtype=torch.float32, device=data.device))
    half = torch.as_tensor(half, device=data.device)
    keep = torch.as_tensor(particle_classes, device=data.device)
    references = []
    for h in (0, 1):
        members = half == h
        counts = torch.bincount(labels[members], minlength=len(particle_classes))
        averages = class_averages(aligned[members], labels[members], len(particle_classes))
        references.append(averages[keep & (counts > 0)])
    picks = torch.zeros(len(data), device=data.device)
    for h in (0, 1):
        members = half == h
        if members.any() and len(references[1 - h]):
            picks[members] = align(ShiftedSpectra(data[members], n_rings, max_shift), references[1 - h])[3]
    spectra = ShiftedSpectra(background, n_rings, max_shift)
    scores = [align(spectra, r)[3] for r in references if len(r)]
    background_scores = torch.stack(scores).mean(0) if scores else torch.zeros(len(background))
    return picks.cpu().numpy(), background_scores.cpu().numpy()


def background_test(images, background_images, classes, particle_classes, particle_radius: float, quantile: float,
                    rng: np.random.Generator, device="cpu"):
    """Which picks match the particle classes no better than ``quantile`` of the background boxes.

    Parameters
    ----------
    images, background_images : numpy.ndarray
        ``(n, size, size)`` and ``(m, size, size)`` normalised pick and background images.
    classes : deepscope.cryoem.classify2d.clustering.Classes
        The picks' classification.
    particle_classes : numpy.ndarray
        ``(k,)`` bool, the classes that are not junk.
    particle_radius : float
        In image pixels.
    quantile : float
        0 skips the test.
    rng : numpy.random.Generator
        Draws the half-sets.
    device : str or torch.device

    Returns
    -------
    match : numpy.ndarray
        ``(n,)`` each pick's correlation (:func:`half_set_matches`); NaN where the test did not run.
    like_background : numpy.ndarray
        ``(n,)`` bool, the picks the test calls junk.
    note : str
        What was done, for the report (the threshold, or why the test did not run).
    """
    from deepscope.cryoem.classify2d.clustering import MAX_SHIFT, masked_images

    match, like_background = np.full(len(images), np.nan), np.zeros(len(images), dtype=bool)
    if quantile <= 0:
        return match, like_background, "not used (quantile 0): picks judged by their class alone"
    if len(background_images) < MIN_BACKGROUND_BOXES:
        return match, like_background, (f"not used: {len(background_images)} background boxes found, fewer than "
                                        f"{MIN_BACKGROUND_BOXES}; picks judged by their class alone")
    if not particle_classes.any():
        return match, like_background, "not needed: every class is junk"
    data, _, n_rings = masked_images(images, particle_radius, device)
    background, _, _ = masked_images(background_images, particle_radius, device)
    match, background_match = half_set_matches(data, classes, particle_classes, n_rings, MAX_SHIFT,
                                               rng.integers(0, 2, len(images)), background)
    threshold = float(np.quantile(background_match, quantile))
    return match, match <= threshold, (f"{len(background)} background boxes; a pick is junk at correlation "
                                       f"<= {threshold:.3f}, their {quantile:.0%} quantile")
