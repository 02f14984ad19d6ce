"""Which class averages look like particles: the junk score.

Measured on the average image:

- ``disk_contrast``: mean squared density inside the particle disk over
  that in the ring just outside it. Noise, ice gradients and carbon edges
  fill the box evenly; a centred particle fills the disk and leaves the
  ring flat. The ring's level is the median over angular sectors, so a
  neighbouring particle that touches one side of the box (common at high
  particle density) does not make a good class look like junk.
- ``offset``: distance of the density's centre inside the particle disk
  (weighted by squared density) from the box centre, in particle radii. A
  box whose centre fell on the edge of a particle averages to an
  off-centre blob.

The score (:func:`junk_score`) is the disk contrast discounted for the
offset. ``consistency``, the mean correlation of the members with their
average after alignment, is reported beside it but not used: it follows the
micrograph's signal-to-noise ratio more than the particles' quality.
"""

import numpy as np
import pandas as pd

from deepscope.cryoem.extract import disk_radius_mask

# The score is the disk contrast, discounted linearly to 0 as the average's
# centre moves off by OFFSET_LIMIT particle radii; below MIN_SCORE a class is
# junk. Chosen on the truth and on random coordinates of four EMPIAR-10017
# micrographs that are not among those reported (14_57_34, 15_07_41,
# 15_14_01, 15_27_22; benchmarks/bench_cryoem_classify.py --split calibration).
OFFSET_LIMIT = 0.3
MIN_SCORE = 5.0
# The ring is cut into this many sectors; its level is their median.
RING_SECTORS = 16
JUNK_RULE = (f"score = disk contrast (mean squared density inside the particle disk over the median of the ring "
             f"outside it) "
             f"x (1 - centre offset / {OFFSET_LIMIT:g} particle radii); junk below {MIN_SCORE:g}")


def junk_score(disk_contrast: float, offset: float) -> float:
    """The score that decides junk: disk contrast, discounted for an off-centre average.

    Examples
    --------
    >>> junk_score(20.0, 0.0), junk_score(20.0, 0.15), junk_score(20.0, 0.5)
    (20.0, 10.0, 0.0)
    """
    return disk_contrast * max(0.0, 1.0 - offset / OFFSET_LIMIT)


def average_measures(average: np.ndarray, radius: float) -> dict:
    """``disk_contrast`` and ``offset`` (module docstring) of a class average centred on pixel ``size // 2``.

    ``radius`` is the particle radius in image pixels.

    Examples
    --------
    >>> grid = np.arange(32) - 16
    >>> blob = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / 20.0)
    >>> m = average_measures(blob, 8)
    >>> bool(m["disk_contrast"] > 10), round(m["offset"], 3)
    (True, 0.0)
    """
    size = average.shape[-1]
    energy = average.astype(np.float64) ** 2
    inside = disk_radius_mask(size, radius)
    ring = disk_radius_mask(size, min(radius * 1.4, size / 2)) & ~inside
    grid = np.arange(size) - size // 2
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    sector = ((np.arctan2(rows, cols) + np.pi) / (2 * np.pi) * RING_SECTORS).astype(int) % RING_SECTORS
    ring_level = np.median([energy[ring & (sector == s)].mean() for s in range(RING_SECTORS)])
    weight = energy * inside
    total = weight.sum() or 1.0
    centre = np.array([(weight * cols).sum(), (weight * rows).sum()]) / total
    return {"disk_contrast": float(energy[inside].mean() / max(ring_level, 1e-12)),
            "offset": float(np.hypot(*centre) / radius)}


def class_table(classes, radius: float):
    """Classes sorted by size, with their measures, score and junk flag.

    ``classes`` is a :class:`~deepscope.cryoem.classify2d.clustering.Classes`;
    ``radius`` the particle radius in image pixels.

    Returns
    -------
    order : numpy.ndarray
        Original class index of each row (largest class first).
    table : pandas.DataFrame
        ``class`` (1-based, largest first), ``n``, ``junk`` (0/1),
        ``score`` (:func:`junk_score`),
        ``disk_contrast``, ``offset``, ``consistency``.
    """
    counts = np.bincount(classes.labels, minlength=len(classes.averages))
    order = np.argsort(-counts, kind="stable")
    rows = []
    for rank, index in enumerate(order):
        measures = average_measures(classes.averages[index], radius)
        members = classes.labels == index
        score = junk_score(measures["disk_contrast"], measures["offset"])
        rows.append({"class": rank + 1, "n": int(counts[index]), "junk": int(score < MIN_SCORE),
                     "score": score, **measures,
                     "consistency": float(classes.correlation[members].mean()) if members.any() else np.nan})
    return order, pd.DataFrame(rows)
