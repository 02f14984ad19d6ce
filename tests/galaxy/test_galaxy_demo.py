"""The galaxy demo's cutout step: frames with a real WCS in, cutouts scaled to each galaxy out."""

import numpy as np
import pandas as pd
from PIL import Image

from deepscope.core.report import Report
from deepscope.galaxy.demo import add_cutouts_from_frames


def _moment_radius(path):
    """Flux-weighted rms distance from the centre of a cutout's green (r band) channel, pixels."""
    image = np.asarray(Image.open(path), dtype=float)[..., 1]
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    centre = (np.array(image.shape) - 1) / 2
    return float(np.sqrt((image * ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2)).sum() / image.sum()))


def test_demo_cuts_both_discs_alike_and_lists_the_off_frame_row(tmp_path):
    report = Report(tmp_path, "demo")
    add_cutouts_from_frames(report, tmp_path)
    page = report.write().read_text()
    table = pd.read_csv(tmp_path / "galaxy_cutouts" / "cutouts.csv").set_index("name")
    assert table.loc["off_frame", "status"] == "off every frame"
    assert table.loc[["small", "large"], "status"].tolist() == ["ok", "ok"]
    assert table.loc["large", "field_arcsec"] == 2 * table.loc["small", "field_arcsec"]
    # a disc twice the size in a field twice the size looks the same in its cutout
    small, large = (_moment_radius(tmp_path / "galaxy_cutouts" / f"{n}.png") for n in ("small", "large"))
    assert abs(small - large) / small < 0.05
    assert "Cutouts from survey frames" in page and (tmp_path / "galaxy_cutouts.png").is_file()
