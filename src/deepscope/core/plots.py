"""Matplotlib figures for evaluation reports (Agg backend, no screen needed)."""

import numpy as np


def _figure(width=4.5, height=4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def roc_figure(curves):
    """ROC curves.

    Parameters
    ----------
    curves : dict of str -> (y_true, score)
        One curve per label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = _figure()
    for label, (y_true, score) in curves.items():
        fpr, tpr, _ = roc_curve(y_true, score)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y_true, score):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_figure(matrix, class_names, title="confusion matrix"):
    """Annotated confusion matrix (rows true, columns predicted).

    Parameters
    ----------
    matrix : numpy.ndarray
    class_names : sequence of str
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(class_names)
    fig, ax = _figure(1.2 + 0.6 * n + 2, 1.2 + 0.6 * n + 1.5)
    ax.imshow(matrix, cmap="Blues")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            colour = "white" if matrix[i, j] > matrix.max() / 2 else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def calibration_figure(curves, n_bins=10):
    """Reliability diagram: observed positive fraction against predicted probability.

    Parameters
    ----------
    curves : dict of str -> (y_true, probability)
    n_bins : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.calibration import calibration_curve

    fig, ax = _figure()
    for label, (y_true, prob) in curves.items():
        observed, predicted = calibration_curve(y_true, prob, n_bins=n_bins)
        ax.plot(predicted, observed, marker="o", label=label)
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="predicted probability", ylabel="observed fraction", title="calibration")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def scatter_figure(x, y, xlabel, ylabel, title, diagonal=True):
    """Scatter plot, e.g. predicted against expected value.

    Parameters
    ----------
    x, y : array-like
    xlabel, ylabel, title : str
    diagonal : bool
        Draw the y = x line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _figure()
    ax.scatter(x, y, s=6, alpha=0.6)
    if diagonal:
        lo, hi = float(np.nanmin([np.nanmin(x), np.nanmin(y)])), float(np.nanmax([np.nanmax(x), np.nanmax(y)]))
        ax.plot([lo, hi], [lo, hi], ls=":", c="grey")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.tight_layout()
    return fig


def image_grid_figure(images, titles, ncols=8, cmap=None, suptitle=None):
    """A grid of images (feature maps, examples, overlays).

    Parameters
    ----------
    images : sequence of numpy.ndarray
        2-D (shown with ``cmap``) or RGB arrays.
    titles : sequence of str
    ncols : int
    cmap : str, optional
    suptitle : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nrows = max(1, -(-len(images) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.7 * nrows), dpi=100, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles):
        ax.imshow(image, cmap=cmap)
        ax.set_title(title, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig
