"""Picks scored against the truth: one-to-one matching, precision / recall / F1, centre errors.

Picks match true centres one to one within half a particle diameter
(Hungarian matching), per micrograph, by file stem; counts pooled over
micrographs give the summary and the precision-recall curve.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.cryoem.coordinates import coordinate_files_by_stem
from deepscope.cryoem.pick_sets import load_pick_set, parse_spec
from deepscope.errors import BatchError, InputError

log = logging.getLogger(__name__)


def match_picks(picks: pd.DataFrame, truth: pd.DataFrame, radius: float) -> dict:
    """One-to-one matching of picks to true centres within ``radius``.

    The Hungarian algorithm maximises the number of pairs (then minimises
    their total distance), so no true particle is counted twice.

    Parameters
    ----------
    picks, truth : pandas.DataFrame
        Columns ``x``, ``y``.
    radius : float
        Largest centre distance of a match (half a diameter, by convention).

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1`` and
        ``pairs`` (``(pick_index, truth_index)`` array).

    Examples
    --------
    >>> p = pd.DataFrame({"x": [0.0, 50.0], "y": [0.0, 0.0]})
    >>> t = pd.DataFrame({"x": [3.0], "y": [4.0]})
    >>> r = match_picks(p, t, 10.0); (r["tp"], r["fp"], r["fn"])
    (1, 1, 0)
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import cKDTree

    a = picks[["x", "y"]].to_numpy(dtype=np.float64)
    b = truth[["x", "y"]].to_numpy(dtype=np.float64)
    pairs = np.zeros((0, 2), dtype=np.int64)
    if len(a) and len(b):
        distances = cKDTree(a).sparse_distance_matrix(cKDTree(b), radius, output_type="coo_matrix")
        rows, cols = distances.row, distances.col
        if len(rows):
            # only picks and truths with a candidate partner enter the
            # assignment; a large constant makes "no match" the last resort
            ui, ri = np.unique(rows, return_inverse=True)
            uj, rj = np.unique(cols, return_inverse=True)
            big = 1e6
            cost = np.full((len(ui), len(uj)), big)
            cost[ri, rj] = distances.data
            pi, pj = linear_sum_assignment(cost)
            good = cost[pi, pj] < big
            pairs = np.column_stack([ui[pi[good]], uj[pj[good]]])
    tp = len(pairs)
    return {**precision_recall_f1(tp, len(a) - tp, len(b) - tp), "pairs": pairs}


def centre_errors(picks: pd.DataFrame, truth: pd.DataFrame, pairs: np.ndarray) -> np.ndarray:
    """Distance in pixels between each matched pick and its true centre.

    ``pairs`` holds ``(pick_index, truth_index)`` rows, as :func:`match_picks` returns them.

    Examples
    --------
    >>> p = pd.DataFrame({"x": [0.0, 50.0], "y": [0.0, 0.0]})
    >>> t = pd.DataFrame({"x": [3.0], "y": [4.0]})
    >>> centre_errors(p, t, match_picks(p, t, 10.0)["pairs"]).tolist()
    [5.0]
    """
    a = picks[["x", "y"]].to_numpy(dtype=np.float64)[pairs[:, 0]]
    b = truth[["x", "y"]].to_numpy(dtype=np.float64)[pairs[:, 1]]
    return np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1])


def median_or_nan(values: list[np.ndarray]) -> float:
    """Median of the pooled arrays, NaN when they hold nothing (a picker with no match)."""
    pooled = np.concatenate(values) if values else np.zeros(0)
    return float(np.median(pooled)) if len(pooled) else float("nan")


def pr_curve(pick_sets: list[pd.DataFrame], truth_sets: list[pd.DataFrame], radius: float,
             thresholds) -> pd.DataFrame:
    """Precision, recall and F1 pooled over micrographs, per score threshold.

    Parameters
    ----------
    pick_sets, truth_sets : list of pandas.DataFrame
        Picks (with ``score``) and truth, one pair per micrograph.
    radius : float
    thresholds : sequence of float

    Returns
    -------
    pandas.DataFrame
        ``threshold, tp, fp, fn, precision, recall, f1``.
    """
    rows = []
    for threshold in thresholds:
        tp = fp = fn = 0
        for picks, truth in zip(pick_sets, truth_sets):
            result = match_picks(picks[picks["score"] >= threshold], truth, radius)
            tp, fp, fn = tp + result["tp"], fp + result["fp"], fn + result["fn"]
        rows.append({"threshold": threshold, **summarise_counts(tp, fp, fn)})
    return pd.DataFrame(rows)


def precision_recall_f1(tp: int, fp: int, fn: int) -> dict:
    """``tp, fp, fn, precision, recall, f1`` of match counts (0.0 where undefined).

    ``tp``, ``fp``, ``fn``: matched picks, unmatched picks, unmatched true particles.

    Examples
    --------
    >>> precision_recall_f1(8, 2, 2)["f1"]
    0.8000000000000002
    >>> precision_recall_f1(0, 0, 3)["precision"]
    0.0
    """
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def summarise_counts(tp: int, fp: int, fn: int) -> dict:
    """:func:`precision_recall_f1` of pooled counts, F1 rounded to 12 decimals.

    The rounding makes thresholds whose F1 differs only by float noise tie,
    so the best threshold of a curve is the first of them.

    Examples
    --------
    >>> summarise_counts(8, 2, 2)["f1"]
    0.8
    """
    scores = precision_recall_f1(tp, fp, fn)
    return {**scores, "f1": round(scores["f1"], 12)}


def evaluate_pick_sets(picks: dict[str, pd.DataFrame], truth: dict[str, pd.DataFrame], diameter: float,
                       peers=(), threshold: float | None = None, thresholds=None) -> dict:
    """Score our picks and peer pick sets against the truth.

    Parameters
    ----------
    picks : dict of str -> DataFrame
        Our picks by micrograph stem (with ``score``).
    truth : dict of str -> DataFrame
    diameter : float
        Particle diameter; matches lie within half of it.
    peers : list of (str, dict of str -> DataFrame)
        Named peer pick sets, already in the truth's frame.
    threshold : float, optional
        Keep only our picks scoring at least this.
    thresholds : sequence of float, optional
        Thresholds of the precision-recall curve of our picks.

    Returns
    -------
    dict
        ``summary`` (one row per picker, pooled over the micrographs that
        every picker and the truth share, with ``median_centre_error_px``),
        ``per_micrograph`` (every picker, every micrograph it has),
        ``curve`` (our precision-recall curve on the shared micrographs),
        ``shared`` (their stems) and ``unmatched`` (our pick files with no truth).

    Raises
    ------
    InputError
        If none of our pick files has a truth file, or no micrograph is
        shared by every picker.
    """
    radius = diameter / 2
    unmatched = sorted(set(picks) - set(truth))
    ours = {s: t for s, t in picks.items() if s in truth}
    if not ours:
        msg = "no pick file has a truth file with the same micrograph name"
        raise InputError(msg)
    if threshold is not None:
        ours = {s: t[t["score"].fillna(np.inf) >= threshold] for s, t in ours.items()}
    all_sets = [("deepscope", ours)] + list(peers)
    shared = sorted(set(ours).intersection(*(set(p) for _, p in peers)))
    if not shared:
        msg = "no micrograph has picks from every picker and a truth file; check the peer directories"
        raise InputError(msg)
    per_rows, summary_rows = [], []
    for name, sets in all_sets:
        counts, errors = np.zeros(3, dtype=int), []
        for stem in sorted(set(sets) & set(truth)):
            result = match_picks(sets[stem], truth[stem], radius)
            error = centre_errors(sets[stem], truth[stem], result["pairs"])
            per_rows.append({"picker": name, "micrograph": stem, "n_picks": len(sets[stem]),
                             "n_true": len(truth[stem]), "precision": result["precision"],
                             "recall": result["recall"], "f1": result["f1"],
                             "median_centre_error_px": median_or_nan([error])})
            if stem in shared:
                counts += [result["tp"], result["fp"], result["fn"]]
                errors.append(error)
        summary_rows.append({"picker": name, "micrographs": len(shared), **summarise_counts(*counts),
                             "median_centre_error_px": median_or_nan(errors)})
    if thresholds is None:
        thresholds = np.round(np.arange(0.05, 1.0, 0.05), 2)
    scored = [ours[s].fillna({"score": 1.0}) for s in shared]
    curve = pr_curve(scored, [truth[s] for s in shared], radius, thresholds)
    return {"summary": pd.DataFrame(summary_rows), "per_micrograph": pd.DataFrame(per_rows),
            "curve": curve, "shared": shared, "unmatched": unmatched}


def raise_for_unmatched(unmatched: list[str], picks_dir: str | Path) -> None:
    """Raise a :class:`BatchError` naming the pick files of ``picks_dir`` whose stems in ``unmatched`` have no truth.

    Raises
    ------
    BatchError
        Listing those files (after the results were written).
    """
    if unmatched:
        files = coordinate_files_by_stem(picks_dir, "picks")
        raise BatchError([(str(files[s]), "no truth file for this micrograph") for s in unmatched])


def warn_if_seen(shared: list[str], seen_micrographs: frozenset, model: str) -> list[str]:
    """Warn when scored micrographs (stems ``shared``) trained or tuned the model named ``model`` (any description).

    Returns
    -------
    list of str
        The scored stems among ``seen_micrographs`` (empty when the score is a test).
    """
    seen = sorted(set(shared) & set(seen_micrographs))
    if seen:
        log.warning("%d of the %d scored micrographs trained or validated %s (%s%s): their scores are not a test",
                    len(seen), len(shared), model, ", ".join(seen[:3]), " ..." if len(seen) > 3 else "")
    return seen


def evaluate_pick_files(picks_dir: str | Path, truth_dir: str | Path, diameter: float, out_dir: str | Path,
                        peers=(), picks_flip_height: int | None = None, truth_flip_height: int | None = None,
                        threshold: float | None = None, micrograph_dir: str | Path | None = None,
                        model: str | Path | None = None) -> dict:
    """Score a directory of picks (and peers') against the truth and write the tables and report: ``cryoem evaluate``.

    Parameters
    ----------
    picks_dir, truth_dir : str or Path
        Directories of coordinate files named by micrograph stem.
    diameter : float
        Particle diameter in pixels; matches lie within half of it.
    out_dir : str or Path
        Receives ``summary.csv``, ``per_micrograph.csv``, ``pr_curve.csv`` and ``report.html``.
    peers : sequence of str
        ``NAME=DIR[,flip-y=HEIGHT]`` (:func:`~deepscope.cryoem.pick_sets.parse_spec`).
    picks_flip_height, truth_flip_height : int, optional
        Flip our picks / the truth with this micrograph height.
    threshold : float, optional
        Keep only our picks scoring at least this.
    micrograph_dir : str or Path, optional
        Micrographs, for overlay images in the report.
    model : str or Path, optional
        The model that made the picks (default: the shipped default picker):
        warns if it trained on, or was validated on, a scored micrograph.

    Returns
    -------
    dict
        :func:`evaluate_pick_sets`'s result plus ``report`` (its path).

    Raises
    ------
    InputError
        If the diameter is not positive, a peer is malformed, or nothing
        can be scored.
    FormatError
        If a directory or coordinate file is unusable.
    """
    from deepscope.core.files import check_writable, write_table
    from deepscope.cryoem.figures import write_evaluation_report
    from deepscope.cryoem.predictor import Picker
    from deepscope.registry import shipped_entry

    if diameter <= 0:
        msg = f"--diameter must be positive, got {diameter}"
        raise InputError(msg)
    specs = [parse_spec(s) for s in peers]
    for spec, (name, _, _) in zip(peers, specs):
        if name is None:
            msg = f"peer {spec!r}: expected NAME=DIR or NAME=DIR,flip-y=HEIGHT"
            raise InputError(msg)
    out_dir = check_writable(out_dir, is_dir=True)
    truth = load_pick_set(Path(truth_dir), truth_flip_height, "truth")
    picks = load_pick_set(Path(picks_dir), picks_flip_height, "picks")
    peer_sets = [(name, load_pick_set(path, flip, f"{name} picks")) for name, path, flip in specs]
    result = evaluate_pick_sets(picks, truth, diameter, peer_sets, threshold=threshold)
    name = str(model) if model is not None else f"the default model {shipped_entry(None, 'cryoem').name}"
    warn_if_seen(result["shared"], Picker.from_checkpoint(model).seen_micrographs, name)
    write_table(result["summary"], out_dir / "summary.csv")
    write_table(result["per_micrograph"], out_dir / "per_micrograph.csv")
    write_table(result["curve"], out_dir / "pr_curve.csv")
    report = write_evaluation_report(result, out_dir, picks, truth, diameter,
                                     Path(micrograph_dir) if micrograph_dir else None)
    return {**result, "report": report}
