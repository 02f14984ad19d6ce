"""The template-matching baseline: nearest library spectrum by chi-square.

Every network is reported beside it, trained on the same spectra (a
checkpoint stores its training spectra as the templates), so a table says
what a network adds over looking the answer up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepscope.spectra.predictor import decode
from deepscope.spectra.targets import type_targets


class TemplateMatcher:
    """Nearest library spectrum by chi-square on the common grid (baseline).

    Like PyHammer-style tools: every prepared template is compared with the
    spectrum over the pixels both cover; the temperature index comes from
    the nearest template whose subclass is known, the luminosity class from
    the nearest whose luminosity class is known.

    Parameters
    ----------
    x : numpy.ndarray
        Template fluxes ``(T, n)`` (row 0 of prepared spectra).
    mask : numpy.ndarray of bool
        ``(T, n)``.
    sptypes : sequence of str
    """

    def __init__(self, x: np.ndarray, mask: np.ndarray, sptypes: Sequence[str]):
        targets = type_targets(list(sptypes))
        self.x = np.asarray(x, np.float32) * mask
        self.mask = np.asarray(mask, np.float32)
        self.t = targets["t"]
        self.t_ok = targets["t_known"] > 0
        self.lum = targets["lum"].argmax(1) + 1
        self.lum_ok = targets["lum_known"] > 0
        # A template's luminosity is only a single class if it is not a range.
        self.lum_ok &= targets["lum"].max(1) > 0.75

    def chi2(self, x: np.ndarray) -> np.ndarray:
        """Mean squared difference over common pixels, ``(N, T)``."""
        flux, mask = x[:, 0], x[:, 1]
        w, y = self.mask, self.x
        common = mask @ w.T
        sq = (mask * flux ** 2) @ w.T - 2 * (mask * flux) @ y.T + mask @ (y ** 2).T
        with np.errstate(invalid="ignore", divide="ignore"):
            # Templates sharing under a third of the grid are no match at all.
            return np.where(common >= 0.3 * flux.shape[1], sq / np.maximum(common, 1), np.inf)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> list[dict]:
        """Prediction rows for prepared spectra ``(N, 2, n)``."""
        rows = []
        for start in range(0, len(x), batch_size):
            d = self.chi2(np.asarray(x[start:start + batch_size], np.float32))
            t = self.t[np.argmin(np.where(self.t_ok, d, np.inf), axis=1)]
            lum = self.lum[np.argmin(np.where(self.lum_ok, d, np.inf), axis=1)]
            rows += decode(t, lum)
        return rows

    @classmethod
    def from_meta(cls, meta: dict) -> TemplateMatcher:
        """The baseline built from a checkpoint's training spectra."""
        templates = meta["templates"]
        return cls(templates["x"].float().numpy(), templates["mask"].numpy(), templates["sptypes"])
