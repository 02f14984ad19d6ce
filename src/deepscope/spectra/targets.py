"""MK types as training targets: soft labels, the partial-type loss and the validation score.

A type gives up to two targets: the temperature index ``t = 10*(A1-1) + A2``
(classified over 70 subclass bins with soft labels, read back at half-subclass
resolution) and the luminosity class (classified, I ... VI). The loss uses
what a catalogue string knows: a full type trains both heads; ``'Am'`` or
``'G:w?'`` (main class only) spreads its temperature target over its main
class; ``'M6Svar'`` trains the temperature head alone;
``'sd:F'`` trains the luminosity head and the main-class interval. Strings
with no O-M type (``'HB'``, ``'L0'``) are left out, and counted.
"""

import math
from collections.abc import Sequence

import numpy as np

from deepscope.spectra.mktype import N_LUM, N_T_BINS, parse_mk
from deepscope.spectra.decoding import t_index_from_logits


def type_targets(sptypes: Sequence[str]) -> dict[str, np.ndarray]:
    """Training targets of catalogue type strings, arrays by name.

    ``usable`` (a type was parsed), ``t`` (temperature index, 0 where
    unknown), ``t_known``, ``lo``/``hi`` (the interval the index must lie
    in), ``lum`` (``(N, N_LUM)`` soft labels: ``IV-V`` is half IV, half V),
    ``lum_known``.

    Examples
    --------
    >>> targets = type_targets(["G2V", "Am", "HB"])
    >>> targets["usable"].tolist(), targets["t"].tolist(), targets["lum_known"].tolist()
    ([True, True, False], [42.0, 0.0, 0.0], [1.0, 0.0, 0.0])
    """
    n = len(sptypes)
    out = {"usable": np.zeros(n, bool), "t": np.zeros(n, np.float32), "t_known": np.zeros(n, np.float32),
           "lo": np.zeros(n, np.float32), "hi": np.zeros(n, np.float32),
           "lum": np.zeros((n, N_LUM), np.float32), "lum_known": np.zeros(n, np.float32)}
    for i, text in enumerate(sptypes):
        mk = parse_mk(text)
        if mk is None:
            continue
        out["usable"][i] = True
        base = 10.0 * (mk.a1 - 1)
        out["lo"][i], out["hi"][i] = base, base + 9.5
        if mk.subclass is not None:
            out["t"][i], out["t_known"][i] = mk.temperature_index, 1.0
        if mk.lum_class is not None:
            low, high = math.floor(mk.lum_class), math.ceil(mk.lum_class)
            out["lum"][i, low - 1] += 0.5
            out["lum"][i, high - 1] += 0.5
            out["lum_known"][i] = 1.0
    return out


def t_target_distribution(targets: dict, sigma: float = 1.0):
    """Soft labels over the temperature bins (torch).

    A known index becomes a Gaussian of ``sigma`` subclasses around it (so
    neighbouring subclasses are near misses, not plain errors); a type known
    only to its main class spreads evenly over that class's bins.
    """
    import torch

    bins = torch.arange(N_T_BINS, dtype=targets["t"].dtype, device=targets["t"].device)
    gauss = torch.exp(-0.5 * ((bins[None, :] - targets["t"][:, None]) / sigma) ** 2)
    inside = ((bins[None, :] >= targets["lo"][:, None]) & (bins[None, :] <= targets["hi"][:, None])).to(gauss.dtype)
    dist = torch.where(targets["t_known"][:, None] > 0, gauss, inside)
    return dist / dist.sum(dim=1, keepdim=True).clamp(min=1e-12)


def spectra_loss(outputs, targets: dict):
    """Loss of classifier outputs ``(batch, N_T_BINS + N_LUM)`` against :func:`type_targets` as tensors.

    Soft-label cross-entropy over temperature bins (see
    :func:`t_target_distribution`) and, where it is known, over luminosity
    classes. An optional per-star weight ``w`` scales the temperature term.
    """
    import torch
    import torch.nn.functional as F

    t_log_p = F.log_softmax(outputs[:, :N_T_BINS], dim=1)
    per_star = -(t_target_distribution(targets) * t_log_p).sum(dim=1)
    weight = targets.get("w", torch.ones_like(per_star))
    t_loss = (weight * per_star).sum() / weight.sum().clamp(min=1e-6)
    log_p = F.log_softmax(outputs[:, N_T_BINS:], dim=1)
    ce = -(targets["lum"] * log_p).sum(dim=1)
    lum_loss = (ce * targets["lum_known"]).sum() / targets["lum_known"].sum().clamp(min=1.0)
    return t_loss + lum_loss


def main_class_weights(lo: np.ndarray, cap: float = 5.0) -> np.ndarray:
    """Per-star weights that balance main classes: the most common class's count over each star's, capped, mean 1.

    ``lo`` is the start of each star's main-class interval
    (``type_targets()["lo"]``). Libraries hold few O and M stars;
    unweighted, held-out O stars came out as B.

    Examples
    --------
    >>> [round(float(w), 2) for w in main_class_weights(np.array([0.0, 40.0, 40.0, 40.0]))]  # one O star, three G
    [2.0, 0.67, 0.67, 0.67]
    """
    _, inverse, counts = np.unique(lo, return_inverse=True, return_counts=True)
    weight = np.minimum(counts.max() / counts, cap)[inverse]
    return (weight / weight.mean()).astype(np.float32)


def spectra_score(outputs, targets: dict) -> float:
    """Validation score (higher is better): minus subclass error and luminosity errors."""
    outputs = outputs.numpy()
    t_hat = t_index_from_logits(outputs[:, :N_T_BINS])
    known = targets["t_known"].numpy() > 0
    mae = float(np.abs(t_hat - targets["t"].numpy())[known].mean()) if known.any() else 0.0
    lum_known = targets["lum_known"].numpy() > 0
    pred = outputs[:, N_T_BINS:].argmax(1)
    hit = targets["lum"].numpy()[np.arange(len(pred)), pred] > 0
    lum_err = float(1 - hit[lum_known].mean()) if lum_known.any() else 0.0
    # One luminosity-class error weighs as much as three subclasses.
    return -(mae + 3.0 * lum_err)
