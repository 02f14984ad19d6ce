"""The class-average montage and report.html that ``classify`` writes."""

from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.cryoem.figures import to_uint8

# Tiles per montage row, and the pixel size a tile is drawn at.
MONTAGE_COLUMNS = 10
TILE = 96
# Headings of the junk accounting's columns in reports.
ACCOUNTING_HEADINGS = {"junk_picks": "junk picks", "junk_fraction": "junk fraction",
                       "false_pick_fraction": "false-pick fraction (truth)"}


def montage_image(averages: np.ndarray, classes: pd.DataFrame):
    """A grid of class averages, largest class first, each with its count and verdict.

    Particle-like classes get a green frame and junk classes a red one, and
    the tile says which in words too (colour alone does not carry it).
    ``averages`` are ``(k, size, size)`` in the order of ``classes``
    (``class``, ``n``, ``junk``); returns an RGB image.

    Examples
    --------
    >>> table = pd.DataFrame({"class": [1, 2], "n": [10, 4], "junk": [0, 1]})
    >>> montage_image(np.zeros((2, 8, 8)), table).size
    (960, 120)
    """
    from PIL import Image, ImageDraw

    label_height = 24
    rows = max(1, -(-len(averages) // MONTAGE_COLUMNS))
    canvas = Image.new("RGB", (MONTAGE_COLUMNS * TILE, rows * (TILE + label_height)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for index, (average, row) in enumerate(zip(averages, classes.to_dict("records"))):
        tile = Image.fromarray(to_uint8(average)).resize((TILE - 6, TILE - 6), Image.BILINEAR)
        left = (index % MONTAGE_COLUMNS) * TILE
        top = (index // MONTAGE_COLUMNS) * (TILE + label_height)
        colour = (200, 30, 30) if row["junk"] else (30, 160, 30)
        draw.rectangle([left + 1, top + 1, left + TILE - 2, top + TILE - 2], outline=colour, width=2)
        canvas.paste(tile.convert("RGB"), (left + 3, top + 3))
        draw.text((left + 4, top + TILE), f"{row['class']}: {row['n']} ptcls", fill=(0, 0, 0))
        draw.text((left + 4, top + TILE + 11), "junk" if row["junk"] else "particle", fill=colour)
    return canvas


def write_montage(averages, classes, path) -> None:
    """Save :func:`montage_image` as a PNG, atomically."""
    from deepscope.core.files import atomic_path

    with atomic_path(path) as tmp:
        montage_image(averages, classes).save(tmp, format="PNG")


def write_report(result, out_dir) -> Path:
    """Write ``out_dir/report.html`` (beside ``class_averages.png``): the montage, the classes and the junk accounting.

    ``result`` is a :class:`~deepscope.cryoem.classify2d.run.ClassifyResult`; returns the report's path.
    """
    from deepscope.core.report import Report
    from deepscope.cryoem.classify2d.background import PICK_RULE
    from deepscope.cryoem.classify2d.junk import JUNK_RULE

    report = Report(out_dir, "2D classification and false-pick accounting")
    report.code("\n".join(f"{key}: {value}" for key, value in result.settings.items()))
    n_junk = int(result.classes["junk"].sum())
    report.text(f"{len(result.particles)} particles in {len(result.classes)} classes, {n_junk} of them junk; "
                f"{int(result.particles['junk'].sum())} picks called junk. Class rule: {JUNK_RULE}. Pick rule: "
                f"{PICK_RULE.format(quantile=result.settings['background quantile'])} "
                f"({result.settings['background test']}).")
    report.heading("False-pick accounting per picker")
    report.text(f"Fraction of each picker's picks called junk (in a junk class, or matching the particle classes "
                f"no better than background), beside the fraction that matches "
                f"no true particle (within half a diameter) where a truth set was given; pooled over the "
                f"{len(result.micrographs)} micrograph(s) every picker covers: {', '.join(result.micrographs)}.")
    report.table(result.accounting.rename(columns=ACCOUNTING_HEADINGS).set_index("picker"))
    report.heading("Class averages (largest first)")
    report.image("class_averages.png", "class averages: green frame = particle, red frame = junk")
    classes = result.classes.assign(verdict=np.where(result.classes["junk"] == 1, "junk", "particle"))
    report.table(classes.drop(columns="junk").set_index("class"), caption="classes")
    return report.write()
