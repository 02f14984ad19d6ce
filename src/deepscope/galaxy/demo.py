"""Galaxy section of ``deepscope demo``: cutouts from survey frames, the shipped models on bundled SDSS cutouts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deepscope.core import plots
from deepscope.galaxy.classes import encode_labels
from deepscope.galaxy.evaluate import classification_tables
from deepscope.galaxy.explain import measured_bar, occlusion_figure, occlusion_map
from deepscope.galaxy.predictor import GalaxyPredictor
from deepscope.samples import sample_dir

if TYPE_CHECKING:
    from pathlib import Path

    from deepscope.core.report import Report


def _predict_sample(report, folder, target, model_name, title):
    import pandas as pd

    labels = pd.read_csv(folder / "labels.csv")
    predictor = GalaxyPredictor.from_checkpoint(model_name)
    batch = np.stack([predictor.load_input(folder / f) for f in labels["file"]])
    probs = predictor.probabilities(batch)
    y_true = encode_labels(labels[target], predictor.class_names)
    y_pred = predictor.decide(probs)
    report.heading(title)
    report.text(f"shipped model {model_name!r} on {len(labels)} bundled SDSS cutouts from the held-out "
                f"test split ({predictor.readable_names[-1]} when {predictor.probability_column} >= threshold "
                f"{predictor.threshold:.3f}).")
    report.table(classification_tables(y_true, y_pred, predictor.class_names, target))
    order = np.argsort(-probs[:, -1])
    images = [batch[i].transpose(1, 2, 0) for i in order]
    column = predictor.probability_column
    titles = [f"{predictor.readable_names[y_true[i]]}: {probs[i, -1]:.2f}" for i in order]
    suptitle = f"sorted by {column} (above each cutout: true class: {column})"
    report.figure(plots.image_grid_figure(images, titles, ncols=8, suptitle=suptitle),
                  f"galaxy_{target}_grid", "cutouts sorted by predicted probability")
    return predictor, batch, probs, y_true


def add_demo_section(report: Report, out_dir: Path) -> None:
    """Predict bars and morphology on the bundled samples; add tables, a grid, an occlusion map and the measured bar.

    Parameters
    ----------
    report : deepscope.core.report.Report
    out_dir : Path
        Report directory (figures are written there by the report).
    """
    predictor, batch, probs, y_true = _predict_sample(
        report, sample_dir("galaxy", "bars"), "barred", "galaxy_bars", "Galaxy bars")
    # A confidently but not saturated barred galaxy shows the map best.
    barred = np.flatnonzero((y_true == 1) & (probs[:, 1] >= predictor.threshold))
    shown = barred[np.argmin(np.abs(probs[barred, 1] - 0.9))]
    covered = predictor.covered_probabilities(batch[shown][None])
    heat, base = occlusion_map(lambda b: covered(b)[:, 1], batch[shown])
    bar = measured_bar(predictor, batch[shown])
    report.figure(occlusion_figure(batch[shown].transpose(1, 2, 0), heat, base, "p_bar", bar), "galaxy_occlusion",
                  "occlusion: covering the bar lowers p_bar; the line is the measured bar (length and position "
                  "angle, degrees counter-clockwise from north)" if bar else "occlusion: covering the bar lowers p_bar")
    add_cutouts_from_frames(report, out_dir)
    _predict_sample(report, sample_dir("galaxy", "morphology"), "morphology", "galaxy_morphology",
                    "Galaxy morphology (elliptical vs spiral)")


# A small sky: one field in g, r and i holding two discs of different size,
# and a catalogue row that no frame covers.
DEMO_FIELD = (150.0, 2.0, (240, 240))
DEMO_GALAXIES = [("small", -20.0, 10.0, 2.0), ("large", 18.0, -12.0, 4.0), ("off_frame", 0.0, 300.0, 3.0)]


def add_cutouts_from_frames(report: Report, out_dir: Path) -> None:
    """Write g, r, i frames with a real WCS and a catalogue, run the cutout step, show what came out.

    The two discs get fields of ``size_factor`` x their radius, so they fill
    their cutouts alike; the off-frame row is listed with its status, not fatal.
    """
    import pandas as pd

    from deepscope.errors import BatchError
    from deepscope.galaxy.cutouts.make import DEFAULT_SIZE_FACTOR, CutoutOptions, make_cutouts
    from deepscope.galaxy.cutouts.mosaic import cutout_wcs
    from deepscope.galaxy.synthetic import RED_GALAXY_COLOURS, SDSS_PIXEL_ARCSEC, render_discs, write_frame

    ra0, dec0, shape = DEMO_FIELD
    rows = [{"name": name, "ra": ra0 + east / 3600 / np.cos(np.radians(dec0)), "dec": dec0 + north / 3600,
             "deVRad_r": radius} for name, east, north, radius in DEMO_GALAXIES]
    catalog = pd.DataFrame(rows)
    frames = out_dir / "galaxy_frames"
    frames.mkdir(exist_ok=True)
    wcs = cutout_wcs(ra0, dec0, shape[0] * SDSS_PIXEL_ARCSEC, shape[0])
    discs = [(row["ra"], row["dec"], row["deVRad_r"], 1500.0) for row in rows]
    for band, gain in RED_GALAXY_COLOURS.items():
        write_frame(frames / f"frame-{band}-000756-3-0044.fits", render_discs(wcs, shape, discs, gain), wcs)
    catalog.to_csv(frames / "catalog.csv", index=False)
    try:
        table = make_cutouts(frames / "catalog.csv", [frames], out_dir / "galaxy_cutouts",
                             CutoutOptions(name_column="name", progress=False))
    except BatchError:  # the off-frame row: listed in cutouts.csv, the others written
        table = pd.read_csv(out_dir / "galaxy_cutouts" / "cutouts.csv")
    made = table[table["file"].fillna("") != ""]
    report.heading("Cutouts from survey frames", level=3)
    report.text(f"'deepscope galaxy cutout' on g, r, i FITS frames written here with a real WCS: each galaxy's "
                f"field is {DEFAULT_SIZE_FACTOR:g} x its de Vaucouleurs radius (deVRad_r), resampled to 64 px "
                f"and composed as an asinh colour image (i, r, g as red, green, blue). Both discs fill their "
                f"cutouts alike although one is twice the other's size; the row no frame covers is listed, "
                f"not fatal. Then 'galaxy predict --catalog galaxy_cutouts/cutouts.csv' keeps these columns.")
    from PIL import Image

    images = [np.asarray(Image.open(out_dir / "galaxy_cutouts" / f)) for f in made["file"]]
    titles = [f"{n}: deVRad_r {r:g}\"" for n, r in zip(made["name"], made["deVRad_r"])]
    report.figure(plots.image_grid_figure(images, titles, ncols=len(images)), "galaxy_cutouts",
                  "cutouts scaled to each galaxy's radius")
    report.table(table[["name", "deVRad_r", "field_arcsec", "status"]].set_index("name"),
                 caption="galaxy_cutouts/cutouts.csv (some of its columns)")
