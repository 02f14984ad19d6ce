"""Bar evidence from external catalogues, measured against a bar classifier.

The Galaxy Zoo 2 labels of ``sdss_gz2_bars`` are raw vote fractions with no
vote counts, and many "barred" ones show no visible bar (DATA.md). Three
independent catalogues, cross-matched on the sky, give cleaner evidence:

- Hoyle et al. (2011, MNRAS 417, 2601): bars *drawn* by at least three
  volunteers, positives only. Their galaxies are large on the sky, so the
  unbarred galaxies they are compared with are size-matched to them (same
  number per bright-pixel quantile bin), where size alone says nothing.
- MaNGA bar classes (``Bars`` in 0 ... 1, -0.5 not classified): a second
  opinion, read as barred when ``Bars >= 0.5`` (:data:`MANGA_BARRED_FROM`).
- Willett et al. (2013) Table 5, Stripe 82 co-adds: vote *counts* on the bar
  question, so the labels can be split by how many votes they rest on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from deepscope.core.metrics import binary_summary
from deepscope.galaxy.apparent_size import size_matched_indices
from deepscope.galaxy.crossmatch import crossmatch

if TYPE_CHECKING:
    import pandas as pd

# The paper's overall accuracy on bars (Abraham et al. 2018, their own test
# set, not this split): quoted beside the measured figures, never computed.
PAPER_ACCURACY_PERCENT = 94.1
# Separation accepted as the same galaxy: SDSS J-names truncate positions by
# up to 0.15 arcsec and catalogues differ by under 1 arcsec.
MATCH_RADIUS_ARCSEC = 2.0
MANGA_BARRED_FROM = 0.5
# Stripe 82 bar-question vote counts at which the labels are compared.
STRIPE82_MIN_VOTES = (0, 2, 5, 10)
_STRIPE82_BAR = "t03_bar_a06_bar_count"
_STRIPE82_NO_BAR = "t03_bar_a07_no_bar_count"


def _rate(hits: np.ndarray) -> float | None:
    """Mean of a boolean array; None (JSON null) when empty."""
    return float(np.mean(hits)) if len(hits) else None


def _auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC-AUC, or None when one class is missing."""
    auc = binary_summary(y_true, scores)["roc_auc"] if len(y_true) else float("nan")
    return None if np.isnan(auc) else auc


def match_catalogue(ra: ArrayLike, dec: ArrayLike, path: str | Path, columns: tuple[str, ...] = (),
                    radius_arcsec: float = MATCH_RADIUS_ARCSEC, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The row of a label catalogue nearest to each position (degrees), within a radius.

    Parameters
    ----------
    ra, dec : array-like of float
    path : str or Path
        CSV (optionally gzipped), Parquet or FITS catalogue with sky
        coordinates (:data:`~deepscope.galaxy.crossmatch.COORD_COLUMNS`, or MaNGA's ``objra/objdec``).
    columns : tuple of str
        Catalogue columns to keep (the wide Stripe 82 table has hundreds).
    radius_arcsec : float
    table : pandas.DataFrame, optional
        The catalogue at ``path``, already read; ``path`` then only names it in messages.

    Returns
    -------
    pandas.DataFrame
        One row per position: ``columns`` and ``sep_arcsec`` (empty and NaN where nothing matched).

    Raises
    ------
    InputError
        If the catalogue cannot be read, has no coordinates or lacks one of ``columns``.
    """
    import pandas as pd

    from deepscope.core.files import read_table
    from deepscope.galaxy.crossmatch import coordinate_columns

    if table is None:
        table = read_table(path, required=columns)
    # MaNGA names its columns objra/objdec, which no general rule should guess.
    if "objra" in table.columns and "ra" not in table.columns:
        table = table.rename(columns={"objra": "ra", "objdec": "dec"})
    table = table[[*coordinate_columns(table, source=str(path)), *columns]]
    sample = pd.DataFrame({"_ra": np.asarray(ra, float), "_dec": np.asarray(dec, float)})
    matched = crossmatch(sample, [("catalogue", table)], radius_arcsec, keep_unmatched=True,
                         ra_column="_ra", dec_column="_dec", sample_name="evaluated galaxies",
                         label_sources=[str(path)])
    return matched[[*columns, "catalogue_sep_arcsec"]].rename(columns={"catalogue_sep_arcsec": "sep_arcsec"})


def hoyle_evidence(y_true: ArrayLike, y_pred: ArrayLike, p_bar: ArrayLike, sizes: ArrayLike,
                   confirmed: ArrayLike, seed: int = 0) -> dict:
    """Recall on confirmed bars, and specificity on unbarred galaxies of the same sizes.

    Parameters
    ----------
    y_true, y_pred : array-like of {0, 1}
        Catalogue labels and decisions.
    p_bar : array-like of float
    sizes : array-like
        Apparent sizes (bright-pixel counts).
    confirmed : array-like of bool
        Matched in the Hoyle et al. (2011) catalogue.
    seed : int
        Seed of the size-matched subsampling.

    Returns
    -------
    dict
        ``n_confirmed``, ``confirmed_recall``; on the size-matched subset of
        confirmed bars and unbarred galaxies: ``n_matched``, ``n_control``,
        ``control_specificity``, ``matched_accuracy``, ``matched_roc_auc``,
        ``matched_size_only_auc``.

    Examples
    --------
    >>> r = hoyle_evidence([1, 1, 0, 0], [1, 0, 0, 1], [.9, .4, .1, .8], [50, 60, 50, 60],
    ...                    [True, True, False, False])
    >>> r["confirmed_recall"], r["control_specificity"], r["matched_size_only_auc"]
    (0.5, 0.5, 0.5)
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    p_bar, sizes, confirmed = np.asarray(p_bar, float), np.asarray(sizes, float), np.asarray(confirmed, bool)
    # Confirmed bars against galaxies GZ2 calls unbarred and Hoyle never drew.
    pool = np.flatnonzero(confirmed | ((y_true == 0) & ~confirmed))
    positive = confirmed[pool].astype(int)
    keep = pool[size_matched_indices(sizes[pool], positive, seed=seed)] if positive.any() else pool[:0]
    truth = confirmed[keep].astype(int)
    return {
        "n_confirmed": int(confirmed.sum()),
        "confirmed_recall": _rate(y_pred[confirmed] == 1),
        "n_matched": int(len(keep)),
        "n_control": int(np.sum(truth == 0)),
        "control_specificity": _rate(y_pred[keep][truth == 0] == 0),
        "matched_accuracy": _rate(y_pred[keep] == truth),
        "matched_roc_auc": _auc(truth, p_bar[keep]),
        "matched_size_only_auc": _auc(truth, sizes[keep]),
    }


def manga_evidence(y_true: ArrayLike, y_pred: ArrayLike, p_bar: ArrayLike, bars: ArrayLike) -> dict:
    """Agreement with the MaNGA bar classes (barred when ``Bars >= 0.5``; -0.5 and unmatched left out).

    ``bars`` is MaNGA's ``Bars`` per galaxy (NaN where unmatched). Returns
    ``n``, ``n_barred`` (by MaNGA), ``model_agreement``, ``label_agreement``
    (the GZ2 labels' own, for scale) and ``roc_auc`` of ``p_bar`` against the MaNGA class.

    Examples
    --------
    >>> r = manga_evidence([1, 0, 1], [1, 0, 0], [.9, .2, .3], [1.0, 0.25, -0.5])
    >>> r["n"], r["model_agreement"], r["label_agreement"]
    (2, 1.0, 1.0)
    """
    y_true, y_pred, p_bar = np.asarray(y_true), np.asarray(y_pred), np.asarray(p_bar, float)
    bars = np.asarray(bars, float)
    classified = np.isfinite(bars) & (bars >= 0)
    manga = (bars[classified] >= MANGA_BARRED_FROM).astype(int)
    return {
        "n": int(classified.sum()),
        "n_barred": int(manga.sum()),
        "model_agreement": _rate(y_pred[classified] == manga),
        "label_agreement": _rate(y_true[classified] == manga),
        "roc_auc": _auc(manga, p_bar[classified]),
    }


def stripe82_evidence(y_true: ArrayLike, y_pred: ArrayLike, bar_votes: ArrayLike, no_bar_votes: ArrayLike,
                      min_votes: tuple[int, ...] = STRIPE82_MIN_VOTES) -> list[dict]:
    """Accuracy on the Stripe 82 galaxies, by how many co-add votes the bar question got.

    ``bar_votes`` and ``no_bar_votes`` are Willett et al. (2013) co-add vote
    counts (NaN where unmatched). Returns, per cut of ``min_votes``:
    ``min_votes``, ``n``, ``n_barred`` (catalogue label), ``accuracy``
    (against the label), ``coadd_agreement`` (against the co-add majority, bar
    votes > no-bar votes) and ``label_coadd_agreement``.

    Examples
    --------
    >>> rows = stripe82_evidence([1, 0], [1, 1], [8, 0], [1, 2], min_votes=(0, 5))
    >>> [(r["n"], r["accuracy"]) for r in rows]
    [(2, 0.5), (1, 1.0)]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    bar_votes, no_bar_votes = np.asarray(bar_votes, float), np.asarray(no_bar_votes, float)
    matched = np.isfinite(bar_votes) & np.isfinite(no_bar_votes)
    votes = np.where(matched, bar_votes + no_bar_votes, -1)
    coadd = (bar_votes > no_bar_votes).astype(int)
    result = []
    for cut in min_votes:
        rows = matched & (votes >= cut)
        result.append({"min_votes": int(cut), "n": int(rows.sum()), "n_barred": int(np.sum(y_true[rows] == 1)),
                       "accuracy": _rate(y_pred[rows] == y_true[rows]),
                       "coadd_agreement": _rate(y_pred[rows] == coadd[rows]),
                       "label_coadd_agreement": _rate(y_true[rows] == coadd[rows])})
    return result


def external_evidence(ra: ArrayLike, dec: ArrayLike, y_true: ArrayLike, y_pred: ArrayLike, p_bar: ArrayLike,
                      sizes: ArrayLike, hoyle: str | Path | None = None, manga: str | Path | None = None,
                      stripe82: str | Path | None = None, radius_arcsec: float = MATCH_RADIUS_ARCSEC,
                      seed: int = 0) -> dict:
    """Cross-match the evaluated galaxies with each catalogue given and measure the classifier on it.

    ``ra``, ``dec`` (degrees) place the evaluated galaxies; the other arrays are
    as in :func:`hoyle_evidence`. Returns ``hoyle``, ``manga``, ``stripe82``
    entries for the catalogues given (:func:`hoyle_evidence`,
    :func:`manga_evidence`, :func:`stripe82_evidence`), each with its ``catalogue`` path.

    Raises
    ------
    InputError
        If a catalogue cannot be read or lacks its columns.
    """
    result = {}
    if hoyle is not None:
        matched = match_catalogue(ra, dec, hoyle, radius_arcsec=radius_arcsec)
        confirmed = matched["sep_arcsec"].notna().to_numpy()
        result["hoyle"] = {"catalogue": str(hoyle), **hoyle_evidence(y_true, y_pred, p_bar, sizes, confirmed, seed)}
    if manga is not None:
        matched = match_catalogue(ra, dec, manga, ("Bars",), radius_arcsec)
        bars = _numeric(matched["Bars"])
        result["manga"] = {"catalogue": str(manga), "barred_from": MANGA_BARRED_FROM,
                           **manga_evidence(y_true, y_pred, p_bar, bars)}
    if stripe82 is not None:
        matched = match_catalogue(ra, dec, stripe82, (_STRIPE82_BAR, _STRIPE82_NO_BAR), radius_arcsec)
        votes = [_numeric(matched[column]) for column in (_STRIPE82_BAR, _STRIPE82_NO_BAR)]
        result["stripe82"] = {"catalogue": str(stripe82),
                              "by_votes": stripe82_evidence(y_true, y_pred, *votes)}
    return result


def _numeric(column):
    """Floats with NaN for empty (unmatched) or non-numeric cells."""
    import pandas as pd

    return pd.to_numeric(column, errors="coerce").to_numpy(float, na_value=np.nan)


def _percent(value):
    return None if value is None else round(100 * value, 2)


def summary_table(metrics: dict) -> pd.DataFrame:
    """One table of every headline figure: catalogue labels, size controls, external evidence, the paper.

    ``metrics`` is the ``metrics.json`` of a binary evaluation (``all``,
    ``size_matched``, optional ``external``); the paper's accuracy is quoted
    for the bar task only. Rows ``measure``; columns ``%`` (percent, or
    ROC-AUC x 100), ``n`` and ``compared with``.
    """
    import pandas as pd

    rows = []
    for subset, title in (("all", "all galaxies"), ("size_matched", "size-matched subset")):
        entry = metrics[subset]
        table = entry["table"]
        rows += [(f"accuracy, {title}", entry["accuracy"], entry["n"], "catalogue labels"),
                 (f"ROC-AUC x 100, {title}", entry["roc_auc"], entry["n"], "catalogue labels"),
                 (f"size-only baseline ROC-AUC x 100, {title}", entry["size_only_auc"], entry["n"],
                  "bright-pixel count alone")]
        if subset == "all":
            classes = [name for name in table if name != "Average"]
            rows += [(f"{name} {kind}, {title}", table[name][f"{kind} %"] / 100, table[name]["Number in sample"],
                      "catalogue labels") for name in classes for kind in ("Precision", "Recall")]
    if "Barred" in metrics["all"]["table"]:
        rows.append(("accuracy, Abraham et al. (2018)", PAPER_ACCURACY_PERCENT / 100, None,
                     "the paper's own test set"))
    external = metrics.get("external", {})
    if "hoyle" in external:
        h = external["hoyle"]
        rows += [("confirmed-bar recall (Hoyle)", h["confirmed_recall"], h["n_confirmed"],
                  "bars drawn by >= 3 volunteers"),
                 ("unbarred specificity, size-matched to Hoyle", h["control_specificity"], h["n_control"],
                  "GZ2 unbarred, same sizes"),
                 ("accuracy, Hoyle vs size-matched unbarred", h["matched_accuracy"], h["n_matched"],
                  "Hoyle bars / GZ2 unbarred"),
                 ("ROC-AUC x 100, Hoyle vs size-matched unbarred", h["matched_roc_auc"], h["n_matched"],
                  "Hoyle bars / GZ2 unbarred"),
                 ("size-only baseline ROC-AUC x 100, Hoyle vs size-matched", h["matched_size_only_auc"],
                  h["n_matched"], "bright-pixel count alone")]
    if "manga" in external:
        m = external["manga"]
        rows += [("agreement with MaNGA (Bars >= 0.5)", m["model_agreement"], m["n"], "MaNGA bar classes"),
                 ("GZ2 labels' agreement with MaNGA", m["label_agreement"], m["n"], "MaNGA bar classes")]
    if "stripe82" in external:
        for s in external["stripe82"]["by_votes"]:
            rows += [(f"accuracy, Stripe 82 bar votes >= {s['min_votes']}", s["accuracy"], s["n"],
                      "catalogue labels"),
                     (f"agreement with co-add majority, votes >= {s['min_votes']}", s["coadd_agreement"], s["n"],
                      "Willett 2013 co-add votes")]
    frame = pd.DataFrame(rows, columns=["measure", "%", "n", "compared with"]).set_index("measure")
    frame["%"] = [_percent(v) for v in frame["%"]]
    frame["n"] = frame["n"].astype("Int64")
    return frame
