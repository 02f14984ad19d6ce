"""Classification metrics as tables (no plotting here: see :mod:`deepscope.core.plots`)."""

import numpy as np


def precision_recall_table(y_true, y_pred, class_names):
    """Per-class precision, recall and support, with a support-weighted average.

    The shape follows Abraham et al. (2018), Table 2.

    Parameters
    ----------
    y_true, y_pred : array-like of int
        Class indices ``0 .. len(class_names) - 1``.
    class_names : sequence of str
        Row label of each class index.

    Returns
    -------
    pandas.DataFrame
        Index: class names then ``"Average"``; columns ``Precision %``,
        ``Recall %``, ``Number in sample``.

    Examples
    --------
    >>> t = precision_recall_table([1, 1, 0, 0], [1, 0, 0, 0], ["Unbarred", "Barred"])
    >>> float(t.loc["Barred", "Recall %"]), float(t.loc["Unbarred", "Precision %"])
    (50.0, 66.67)
    """
    import pandas as pd
    from sklearn.metrics import precision_recall_fscore_support

    labels = np.arange(len(class_names))
    # zero_division=nan: a class never predicted has no precision, not a precision of 0.
    precision, recall, _, support = precision_recall_fscore_support(
        np.asarray(y_true, int), np.asarray(y_pred, int), labels=labels, zero_division=np.nan)
    table = pd.DataFrame({"Precision %": 100.0 * precision, "Recall %": 100.0 * recall,
                          "Number in sample": support.astype(int)}, index=list(class_names))
    # Support-weighted like the paper's "Average" row; a class without a value does not count.
    average = {col: float(np.nansum(table[col].to_numpy() * support) / max(support.sum(), 1))
               for col in ("Precision %", "Recall %")}
    table.loc["Average"] = {**average, "Number in sample": int(support.sum())}
    table["Number in sample"] = table["Number in sample"].astype(int)
    return table.round(2)


def confusion(y_true, y_pred, n_classes):
    """Confusion matrix, rows = true class, columns = predicted class.

    Parameters
    ----------
    y_true, y_pred : array-like of int
    n_classes : int

    Returns
    -------
    numpy.ndarray of shape (n_classes, n_classes)

    Examples
    --------
    >>> confusion([0, 1, 1], [0, 0, 1], 3).tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    """
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(np.asarray(y_true, int), np.asarray(y_pred, int), labels=np.arange(n_classes))


def binary_summary(y_true, p_positive, threshold=0.5):
    """Accuracy, ROC-AUC and Brier score of binary probabilities.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    p_positive : array-like of float
    threshold : float

    Returns
    -------
    dict
    """
    from sklearn.metrics import roc_auc_score

    y_true, p_positive = np.asarray(y_true), np.asarray(p_positive, float)
    both = len(np.unique(y_true)) == 2
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean((p_positive >= threshold) == y_true)),
        "roc_auc": float(roc_auc_score(y_true, p_positive)) if both else float("nan"),
        "brier": float(np.mean((p_positive - y_true) ** 2)),
    }
