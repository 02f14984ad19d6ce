"""Turning or mirroring a cutout does not change the shipped bar model's answer; scale_flag marks small galaxies.

The shipped ``galaxy_bars`` records ``meta["orientation"] == "canonical"``:
every rotation and mirror image of a cutout reaches the network as the same
pixels (:mod:`deepscope.galaxy.orientation`), so p_bar is equal, not just
close. Without the canonical view the same network's p_bar moves with the
view, which keeps these tests from passing vacuously.
"""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepscope.core.batch.options import BatchOptions
from deepscope.galaxy.apparent_size import bright_fraction
from deepscope.galaxy.orientation import apply_views, canonical_view_index, dihedral_view
from deepscope.galaxy.predictor import GalaxyPredictor, predict_galaxies
from deepscope.samples import sample_dir

VIEWS = range(8)


@pytest.fixture(scope="module")
def bundled_pixels():
    """The bundled bar cutouts as the network reads them: uint8 (24, 3, 64, 64)."""
    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars")
    paths = sorted((sample_dir("galaxy", "bars") / "images").glob("*.jpeg"))
    return predictor.load_many(paths)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_every_view_of_a_cutout_has_the_same_canonical_view(dtype):
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (16, 3, 64, 64), dtype=np.uint8)
    batch = batch if dtype == np.uint8 else batch / np.float32(255)
    canonical = apply_views(batch, canonical_view_index(batch))
    for view in VIEWS:
        turned = np.ascontiguousarray(dihedral_view(batch, view))
        assert np.array_equal(apply_views(turned, canonical_view_index(turned)), canonical)
    # The rule picks different views for different images: it is not the identity.
    assert len(set(canonical_view_index(batch).tolist())) > 1


def test_shipped_bar_model_gives_the_same_p_bar_for_every_view(bundled_pixels):
    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars")
    assert predictor.canonical
    batch = np.stack(bundled_pixels)
    views = [predictor.probabilities(np.ascontiguousarray(dihedral_view(batch, v)))[:, 1] for v in VIEWS]
    for p in views[1:]:
        np.testing.assert_array_equal(p, views[0])
    assert 0 < (views[0] >= predictor.threshold).sum() < len(batch)
    # The same network on the views as given: p_bar moves, so equality above is the canonical view's doing.
    predictor.canonical = False
    as_given = [predictor.probabilities(np.ascontiguousarray(dihedral_view(batch, v)))[:, 1] for v in VIEWS]
    assert max(np.abs(p - as_given[0]).max() for p in as_given[1:]) > 0.01


def test_default_predict_writes_the_same_rows_for_turned_and_mirrored_files(bundled_pixels, tmp_path):
    # PNG keeps the pixels exactly, so each file is an exact view of the cutout.
    folder = tmp_path / "views"
    folder.mkdir()
    for i, pixels in enumerate(bundled_pixels[:8]):
        for view in VIEWS:
            rgb = np.ascontiguousarray(dihedral_view(pixels, view).transpose(1, 2, 0))
            Image.fromarray(rgb).save(folder / f"g{i}_v{view}.png")
    out = tmp_path / "pred.csv"
    assert predict_galaxies([folder], out, options=BatchOptions(progress=False)) == 64
    pred = pd.read_csv(out, keep_default_na=False)
    pred["galaxy"] = pred["file"].str.extract(r"(g\d+)_v\d\.png$", expand=False)
    per_galaxy = pred.groupby("galaxy")[["p_bar", "barred", "scale_flag", "bar_length_arcsec"]].nunique(dropna=False)
    assert (per_galaxy == 1).all().all()
    assert pred["barred"].nunique() == 2


def test_scale_flag_marks_a_galaxy_shrunk_into_a_wider_field(bundled_pixels, tmp_path):
    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars")
    low = predictor.size_range["low"]
    # A bundled cutout of middling size, drawn at a third of its size on its own darkest sky.
    fractions = bright_fraction(np.stack(bundled_pixels))
    pixels = bundled_pixels[np.argsort(fractions)[len(fractions) // 2]]
    assert bright_fraction(pixels[None])[0] > low
    rgb = pixels.transpose(1, 2, 0)
    small = np.empty_like(rgb)
    small[:] = np.percentile(rgb.reshape(-1, 3), 2, axis=0).astype(np.uint8)
    small[21:43, 21:43] = np.asarray(Image.fromarray(rgb).resize((22, 22), Image.BILINEAR))
    Image.fromarray(rgb).save(tmp_path / "as_cut.png")
    Image.fromarray(small).save(tmp_path / "shrunk.png")
    out = tmp_path / "pred.csv"
    predict_galaxies([tmp_path / "as_cut.png", tmp_path / "shrunk.png"], out, options=BatchOptions(progress=False))
    flags = pd.read_csv(out, keep_default_na=False).set_index("file")["scale_flag"]
    assert flags[str(tmp_path / "as_cut.png")] == ""
    assert flags[str(tmp_path / "shrunk.png")] == "small"


def test_models_without_a_size_range_write_no_scale_flag():
    predictor = GalaxyPredictor.from_checkpoint("galaxy_morphology")
    assert predictor.size_range is None and not predictor.canonical
    assert "scale_flag" not in predictor.output_columns


def test_covered_copies_are_shown_in_the_uncovered_cutouts_view(bundled_pixels):
    """Occlusion maps pass the uncovered cutout's view: covering a patch must not also turn the cutout."""
    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars")
    batch = np.stack(bundled_pixels)
    views = predictor.views_of(batch)
    covered = batch.copy()
    covered[:, :, 20:44, 36:60] = 0
    assert (predictor.views_of(covered) != views).any()  # left to itself, covering turns some
    shown = predictor.covered_probabilities(batch)(covered)
    predictor.canonical = False
    np.testing.assert_array_equal(shown, predictor.probabilities(apply_views(covered, views)))
