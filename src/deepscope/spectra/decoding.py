"""A classifier's outputs read back as MK types: ``G2V``-style rows from the network's two heads.

The networks (:mod:`deepscope.spectra.models`) give logits over 70 whole
subclasses O0 ... M9 and over the luminosity classes I ... VI. Every caller
(the predictor, the template baseline, the validation score, distillation
and the benchmarks) turns them into a type here, so a type is read back the
same way everywhere.
"""

from __future__ import annotations

import numpy as np

from deepscope.spectra.mktype import LUM_NAMES, MAIN_CLASSES, N_LUM, N_T_BINS, format_type, index_to_parts, type_to_code

OUTPUT_COLUMNS = ("sptype", "main_class", "subclass", "lum_class", "code", "temperature_index")


def t_index_from_logits(logits: np.ndarray, window: int = 2) -> np.ndarray:
    """Temperature index from bin logits: mean of the peak and its neighbours.

    Averaging only within ``window`` bins of the most probable one gives
    half-subclass resolution without averaging two separate modes (an
    O9/B0 spectrum must not come out as O4).

    Parameters
    ----------
    logits : numpy.ndarray
        ``(N, N_T_BINS)``.
    window : int

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> logits = np.full((1, N_T_BINS), -30.0)
    >>> logits[0, 42] = logits[0, 43] = 0.0  # G2 and G3 equally likely
    >>> t_index_from_logits(logits).round(2).tolist()
    [42.5]
    """
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    peak = p.argmax(axis=1)
    bins = np.arange(logits.shape[1])
    near = np.abs(bins[None, :] - peak[:, None]) <= window
    weights = p * near
    return (weights * bins).sum(axis=1) / weights.sum(axis=1)


def decode(t_index, lum_class) -> list[dict]:
    """Prediction rows from temperature indices and luminosity classes.

    Parameters
    ----------
    t_index : array-like of float
    lum_class : array-like of int
        1 (I) to 6 (VI).

    Returns
    -------
    list of dict
        Keys :data:`OUTPUT_COLUMNS`.

    Examples
    --------
    >>> decode([42.1], [5])[0]["sptype"], decode([42.1], [5])[0]["code"]
    ('G2V', 5211.5)
    """
    rows = []
    for t, lum in zip(t_index, lum_class):
        main, sub = index_to_parts(t)
        rows.append({"sptype": format_type(main, sub, int(lum)), "main_class": main, "subclass": sub,
                     "lum_class": LUM_NAMES[int(lum)], "code": type_to_code(MAIN_CLASSES.index(main) + 1, sub, lum),
                     "temperature_index": round(min(max(float(t), 0.0), 69.5), 2)})
    return rows


def outputs_to_rows(outputs: np.ndarray) -> list[dict]:
    """Decode classifier outputs ``(N, N_T_BINS + N_LUM)`` (see :mod:`deepscope.spectra.models`).

    Examples
    --------
    >>> outputs = np.zeros((1, N_T_BINS + N_LUM))
    >>> outputs[0, 60] = outputs[0, N_T_BINS + 2] = 30.0  # M0, giant
    >>> outputs_to_rows(outputs)[0]["sptype"]
    'M0III'
    """
    return decode(t_index_from_logits(outputs[:, :N_T_BINS]), outputs[:, N_T_BINS:].argmax(1) + 1)
