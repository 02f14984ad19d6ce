"""The template-matching baseline: nearest library spectrum by chi-square.

Every network is reported beside it, trained on the same spectra (a
checkpoint stores its training spectra as the templates), so a table says
what a network adds over looking the answer up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepscope.spectra.decoding import decode
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
        # chi2's sum of squares over common pixels, (f - y)^2 = f^2 - 2 f y + y^2, as two products.
        self._flux_terms = np.concatenate([self.mask, -2 * self.x], axis=1).T.copy()
        self._mask_terms = np.concatenate([self.mask, self.x ** 2]).T.copy()

    def chi2(self, x: np.ndarray) -> np.ndarray:
        """Mean squared difference over common pixels, ``(N, T)``."""
        flux, mask = x[:, 0], x[:, 1]
        n_templates = len(self.x)
        masked = mask * flux
        # The flux terms in one product; the terms of the mask alone once per distinct mask,
        # since the spectra of one survey table mostly share one (a third of the arithmetic).
        sq = np.concatenate([masked * flux, masked], axis=1) @ self._flux_terms
        first, which = _distinct_rows(mask)
        mask_terms = (mask[first] @ self._mask_terms)[which]
        common = mask_terms[:, :n_templates]
        sq += mask_terms[:, n_templates:]
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


def _distinct_rows(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each distinct 0/1 mask and, for every row, which of them it is.

    Rows are compared as packed bits (``np.unique(mask, axis=0)`` sorts
    whole float rows: slower than the products it saves). A mask with
    values other than 0 and 1 keeps every row apart.

    Examples
    --------
    >>> first, which = _distinct_rows(np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]]))
    >>> first.tolist(), which.tolist()
    ([0, 1], [0, 1, 0])
    """
    if not np.isin(mask, (0.0, 1.0)).all():
        rows = np.arange(len(mask))
        return rows, rows
    packed = np.packbits(mask > 0, axis=1)
    keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, which = np.unique(keys, return_index=True, return_inverse=True)
    return first, which.reshape(-1)
