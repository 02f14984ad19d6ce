"""Post-fit tuning: the settings a trained picker is used with, chosen on the micrographs it has seen.

:func:`tune_picking` chooses the threshold, NMS distance and edge margin that
maximise F1 on the validation micrographs. :func:`measure_centre_offset`
measures how far the picks sit from the labels: labels carry the conventions
of whatever made them, and a network trained on them learns that frame. The
median offset becomes the checkpoint's ``centre_offset``, which
:class:`~deepscope.cryoem.predictor.Picker` subtracts from every pick (near
zero where the labels are the particles' centres). :func:`tune_checkpoint`
does both at the end of training and stores them in the checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Fewer matched picks than this give a median too noisy to correct anything with.
MIN_MATCHED = 100


def measure_centre_offset(picker, items: list[dict], radius_fraction: float = 0.5) -> tuple[float, float]:
    """Median (pick - label) over the matched picks of ``items``, in working pixels.

    Parameters
    ----------
    picker : deepscope.cryoem.predictor.Picker
        With its tuned settings; its own ``centre_offset`` is ignored.
    items : list of dict
        From :func:`deepscope.cryoem.train.load_training_item` (``image``, ``truth``).
    radius_fraction : float
        Match radius in particle diameters.

    Returns
    -------
    tuple of float
        ``(dx, dy)``; ``(0.0, 0.0)`` when fewer than :data:`MIN_MATCHED`
        picks match a label.

    Examples
    --------
    >>> import pandas as pd
    >>> class Shifted:  # a picker whose picks sit 1.5 px right of and 0.5 px above the labels
    ...     working_diameter, centre_offset = 10.0, (0.0, 0.0)
    ...     def pick(self, image, scale):
    ...         return self.truth.assign(x=self.truth["x"] + 1.5, y=self.truth["y"] - 0.5)
    >>> picker = Shifted()
    >>> picker.truth = pd.DataFrame({"x": np.arange(200.0) * 20, "y": np.full(200, 50.0)})
    >>> measure_centre_offset(picker, [{"image": None, "truth": picker.truth}])
    (1.5, -0.5)
    """
    from deepscope.cryoem.evaluate import match_picks

    kept, picker.centre_offset = picker.centre_offset, (0.0, 0.0)
    found = []
    try:
        for item in items:
            # scale 1: picks stay in the working frame, where the labels are
            picks = picker.pick(item["image"], 1.0)
            truth = item["truth"]
            pairs = match_picks(picks, truth, radius_fraction * picker.working_diameter)["pairs"]
            found.append(picks[["x", "y"]].to_numpy()[pairs[:, 0]] - truth[["x", "y"]].to_numpy()[pairs[:, 1]])
    finally:
        picker.centre_offset = kept
    found = np.concatenate(found) if found else np.empty((0, 2))
    if len(found) < MIN_MATCHED:
        return (0.0, 0.0)
    dx, dy = np.median(found, axis=0)
    return (round(float(dx), 4), round(float(dy), 4))


def tune_picking(picker, items: list[dict], radius_fraction: float = 0.5) -> dict:
    """Choose the threshold, NMS distance and edge margin that maximise F1 on ``items``.

    ``items`` are validation micrographs from
    :func:`~deepscope.cryoem.train.load_training_item`; matches lie within
    ``radius_fraction`` diameters.

    Returns
    -------
    dict
        ``threshold``, ``nms_fraction``, ``edge_fraction`` and the
        validation ``f1``.
    """
    from deepscope.cryoem.evaluate import pr_curve
    from deepscope.cryoem.picking import find_picks

    maps = [picker.maps(item["image"]) for item in items]
    best = {"f1": -1.0}
    for nms_fraction in (0.5, 0.6, 0.7, 0.8):
        for edge_fraction in (0.0, 0.5, 1.0, 1.2):
            picks = [find_picks(p, r, picker.working_diameter, 0.05, nms_fraction, edge_fraction) for p, r in maps]
            curve = pr_curve(picks, [item["truth"] for item in items], radius_fraction * picker.working_diameter,
                             np.round(np.arange(0.05, 0.96, 0.05), 2))
            top = curve.loc[curve["f1"].idxmax()]
            if top["f1"] > best["f1"]:
                best = {"threshold": float(top["threshold"]), "nms_fraction": nms_fraction,
                        "edge_fraction": edge_fraction, "f1": float(top["f1"])}
    return best


def tune_checkpoint(path: Path, items: list[dict], val_items: list[dict], device: str = "cpu") -> dict:
    """Tune picking on the validation micrographs, measure the centre offset on all, store both in ``path``.

    Parameters
    ----------
    path : Path
        A picker checkpoint (``best.pt``); its ``augment`` decides the
        test-time views both are measured with.
    items : list of dict
        Training and validation micrographs from :func:`~deepscope.cryoem.train.load_training_item`.
    val_items : list of dict
        The validation micrographs among ``items``.
    device : str

    Returns
    -------
    dict
        :func:`tune_picking`'s settings and validation ``f1``, and
        ``centre_offset`` (:func:`measure_centre_offset`).
    """
    from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint, update_checkpoint_meta
    from deepscope.core.distributed import process_info
    from deepscope.cryoem.predictor import Picker

    record = load_checkpoint(path)
    model, meta = model_from_checkpoint(record), record["meta"]
    tuning = tune_picking(Picker(model, meta, device), val_items)
    settings = {k: tuning[k] for k in ("threshold", "nms_fraction", "edge_fraction")}
    # measured with the tuned settings, on every micrograph whose labels the picker learned or was tuned on
    tuning["centre_offset"] = measure_centre_offset(Picker(model, meta | settings, device), items)
    log.info("validation F1 %.3f at threshold %.2f, NMS %.1f d, edge %.1f d; centres %+.2f, %+.2f working px "
             "from the labels", tuning["f1"], tuning["threshold"], tuning["nms_fraction"], tuning["edge_fraction"],
             *tuning["centre_offset"])
    if process_info().is_primary:  # under torchrun only rank 0 writes
        update_checkpoint_meta(path, **settings, val_f1=tuning["f1"], centre_offset=list(tuning["centre_offset"]))
    return tuning
