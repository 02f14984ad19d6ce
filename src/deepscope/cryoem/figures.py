"""Pictures of picks: overlays on micrographs, the precision-recall figure, the evaluation report."""

from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.core.files import atomic_path


def to_uint8(image: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Scale an image to ``uint8`` between ``low`` and ``high`` (default: its 1st and 99th percentiles), clipped.

    Examples
    --------
    >>> to_uint8(np.array([[0.0, 0.5, 2.0]]), 0.0, 1.0).tolist()
    [[0, 127, 255]]
    """
    low = np.percentile(image, 1) if low is None else low
    high = np.percentile(image, 99) if high is None else high
    return (np.clip((image - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8)


def write_overlay(image: np.ndarray, picks: pd.DataFrame, radius: float, path: str | Path,
                  truth: pd.DataFrame | None = None) -> None:
    """Save a greyscale image as PNG with the picks as green circles of ``radius`` (and the truth as red dots).

    ``picks`` and ``truth`` hold ``x``, ``y`` in ``image`` pixels.
    """
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(to_uint8(image)).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    # Pillow's pixel (i, j) spans [i, i+1): its centre is at +0.5
    for x, y in picks[["x", "y"]].to_numpy() + 0.5:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=(0, 220, 0))
    if truth is not None:
        for x, y in truth[["x", "y"]].to_numpy() + 0.5:
            draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(255, 40, 40))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


# Side of a full-resolution overlay tile, in micrograph pixels: a 4096 px
# micrograph gives 4 x 4 tiles, each small enough to view at 100 %.
OVERLAY_TILE = 1024


def write_overlay_tiles(image: np.ndarray, picks: pd.DataFrame, radius: float, out_dir: str | Path,
                        stem: str, tile: int = OVERLAY_TILE) -> list[Path]:
    """Save the micrograph in full-resolution tiles ``<stem>_overlay_r<i>c<j>.png``, picks circled at particle size.

    The whole-micrograph overview (:func:`write_overlay` at working scale) is
    too small to judge a pick; these tiles show each particle at its native
    pixels. Grey levels come from the whole micrograph, so tiles match.

    Parameters
    ----------
    image : numpy.ndarray
        The micrograph at full resolution.
    picks : pandas.DataFrame
        ``x``, ``y`` in micrograph pixels.
    radius : float
        Particle radius in micrograph pixels.
    out_dir : str or Path
    stem : str
    tile : int
        Tile side in micrograph pixels.

    Returns
    -------
    list of Path
        The tiles written, row by row (``i``, ``j`` count tiles from the top-left).

    Examples
    --------
    >>> import tempfile
    >>> [p.name for p in write_overlay_tiles(np.zeros((1500, 900)), pd.DataFrame({"x": [], "y": []}), 50,
    ...                                      tempfile.mkdtemp(), "m")]
    ['m_overlay_r0c0.png', 'm_overlay_r1c0.png']
    """
    from PIL import Image, ImageDraw

    sample = image[::4, ::4]
    grey = to_uint8(image, float(np.percentile(sample, 1)), float(np.percentile(sample, 99)))
    width = max(1, round(radius / 25))
    centres = picks[["x", "y"]].to_numpy(dtype=np.float64) + 0.5
    rows, columns = -(-image.shape[0] // tile), -(-image.shape[1] // tile)
    paths = [Path(out_dir) / f"{stem}_overlay_r{i}c{j}.png" for i in range(rows) for j in range(columns)]
    for k, path in enumerate(paths):
        top, left = (k // columns) * tile, (k % columns) * tile
        canvas = Image.fromarray(grey[top:top + tile, left:left + tile]).convert("RGB")
        draw = ImageDraw.Draw(canvas)
        near = ((centres[:, 0] > left - radius) & (centres[:, 0] < left + tile + radius)
                & (centres[:, 1] > top - radius) & (centres[:, 1] < top + tile + radius))
        for x, y in centres[near] - (left, top):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=(0, 220, 0), width=width)
        with atomic_path(path) as tmp:
            canvas.save(tmp, format="PNG")
    return paths


def pr_figure(curve: pd.DataFrame):
    """Precision-recall figure of our picks over the score threshold (a :func:`~deepscope.cryoem.evaluate.pr_curve`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.0), layout="constrained")
    ax.plot(curve["recall"], curve["precision"], marker=".")
    best = curve.loc[curve["f1"].idxmax()]
    ax.scatter([best["recall"]], [best["precision"]], color="red", zorder=3,
               label=f"best F1 {best['f1']:.3f} at {best['threshold']:.2f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title="picks vs threshold")
    ax.legend(loc="lower left")
    return fig


def write_evaluation_report(result: dict, out_dir: str | Path, picks: dict[str, pd.DataFrame],
                            truth: dict[str, pd.DataFrame], diameter: float,
                            micrograph_dir: str | Path | None = None, max_overlays: int = 6) -> Path:
    """Write the evaluation's HTML report, with overlays when micrographs are given.

    Parameters
    ----------
    result : dict
        From :func:`deepscope.cryoem.evaluate.evaluate_pick_sets`.
    out_dir : Path
    picks, truth : dict of str -> DataFrame
        Our picks and the truth, by stem.
    diameter : float
    micrograph_dir : Path, optional
        Where ``<stem>.*`` micrographs are, for up to ``max_overlays`` overlay images.
    max_overlays : int

    Returns
    -------
    Path
        The report file.
    """
    from deepscope.core.files import collect_inputs
    from deepscope.core.report import Report
    from deepscope.cryoem.io import MICROGRAPH_SUFFIXES
    from deepscope.cryoem.preprocess import load_for_picking, to_working_frame

    report = Report(out_dir, "Particle picking evaluation")
    report.text(f"One-to-one matching within {diameter / 2:g} px (half the particle diameter), pooled "
                f"over the {len(result['shared'])} micrographs every picker covers: "
                f"{', '.join(result['shared'])}.")
    report.table(result["summary"].set_index("picker"), caption="precision / recall / F1, median centre error of matched picks (px)")
    report.figure(pr_figure(result["curve"]), "pr_curve", "deepscope precision-recall over the threshold")
    report.table(result["per_micrograph"], caption="per micrograph", index=False)
    if micrograph_dir is not None:
        files = {p.stem: p for p in collect_inputs([micrograph_dir], MICROGRAPH_SUFFIXES)}
        report.heading("Overlays (green: deepscope picks, red: truth)")
        for stem in [s for s in result["shared"] if s in files][:max_overlays]:
            # overlays at a particle size of 16 px keep the PNGs small
            image, scale, _ = load_for_picking(files[stem], diameter, 16.0, "off")
            name = f"overlay_{stem}.png"
            write_overlay(image, to_working_frame(picks[stem], scale), 8.0, Path(out_dir) / name,
                          truth=to_working_frame(truth[stem], scale))
            report.image(name, stem)
    return report.write()
