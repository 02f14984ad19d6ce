"""A canonical scale: the network sees every galaxy at one apparent size, whatever field it was cut with.

A model whose ``meta["canonical_scale"]`` is set (``galaxy train
--canonical-scale``) zooms each cutout so that its bright fraction is the
training cutouts' median before the network. These tests give the shipped
bar network a canonical scale by hand, so that they hold whichever model ships.
"""

import numpy as np
import pytest
import torch

from deepscope.cli.main import main
from deepscope.galaxy.apparent_size import bright_fraction
from deepscope.galaxy.orientation import apply_views, dihedral_view
from deepscope.galaxy.predictor import GalaxyPredictor
from deepscope.galaxy.zoom import canonical_zooms, rescale_cutouts, zoom_cutouts
from deepscope.samples import sample_dir

SCALE = {"bright_fraction": 0.3, "zoom_range": [0.6, 1.6]}
# Apparent sizes after the zoom, as training at that scale would record them.
SIZE_RANGE = {"measure": "bright_fraction", "low": 0.25, "high": 0.5}


@pytest.fixture(scope="module")
def bundled_pixels():
    """The bundled bar cutouts as the reader processes hand them over: uint8 (24, 3, 64, 64)."""
    predictor = GalaxyPredictor.from_checkpoint("galaxy_bars")
    paths = sorted((sample_dir("galaxy", "bars") / "images").glob("*.jpeg"))
    return np.stack(predictor.load_many(paths))


def _predictors():
    """The shipped bar network with the canonical scale, and the same network without one."""
    scaled = GalaxyPredictor.from_checkpoint("galaxy_bars")
    scaled.canonical_scale, scaled.size_range = SCALE, SIZE_RANGE
    plain = GalaxyPredictor.from_checkpoint("galaxy_bars")
    plain.canonical_scale = None
    return scaled, plain


def test_the_network_sees_each_cutout_at_the_canonical_scale(bundled_pixels):
    scaled, plain = _predictors()
    zooms = canonical_zooms(bright_fraction(bundled_pixels), SCALE)
    assert zooms.min() < 0.9 and zooms.max() > 1.1  # the bundled galaxies need zooms both ways
    plain.canonical = False
    expected = plain.probabilities(rescale_cutouts(apply_views(bundled_pixels, scaled.views_of(bundled_pixels)), zooms))
    np.testing.assert_array_equal(scaled.probabilities(bundled_pixels), expected)
    floats = bundled_pixels / np.float32(255)  # load_input's floats: the same 8-bit pixels
    np.testing.assert_array_equal(scaled.probabilities(floats), expected)
    assert np.abs(plain.probabilities(bundled_pixels) - expected).max() > 0.01  # it is not the cutout as given
    rows = scaled.rows(list(bundled_pixels))
    np.testing.assert_allclose([row["p_bar"] for row in rows], expected[:, 1], atol=1e-6)


def test_a_field_cut_wider_reaches_the_network_at_the_same_size(bundled_pixels):
    scaled, _ = _predictors()
    as_cut = bundled_pixels[:8]
    wider = np.rint(zoom_cutouts(as_cut, 0.75) * 255).astype(np.uint8)
    inner = (slice(None), slice(None), slice(16, 48), slice(16, 48))
    before = np.abs(as_cut.astype(float) - wider)[inner].mean()
    after = np.abs(scaled.rescaled(as_cut).astype(float) - scaled.rescaled(wider))[inner].mean()
    assert after < 0.4 * before


def test_scale_flag_names_the_galaxies_the_zoom_limit_leaves_too_small(bundled_pixels):
    """The flag reads the size the network sees, after the zoom: a galaxy as cut may be small and still fine."""
    scaled, _ = _predictors()
    as_cut = bright_fraction(bundled_pixels[:1])[0]
    assert as_cut < SIZE_RANGE["low"]  # small as cut, brought to the target by the zoom
    shrunk = np.rint(zoom_cutouts(bundled_pixels[:1], 0.6) * 255).astype(np.uint8)
    needed = np.sqrt(SCALE["bright_fraction"] / bright_fraction(shrunk)[0])
    assert 1.6 < needed < 2.0  # beyond the 1.6x limit: after it, still smaller than the trained sizes
    flags = [row["scale_flag"] for row in scaled.rows([bundled_pixels[0], shrunk[0]])]
    assert flags == ["", "small"]


def test_covered_copies_keep_the_uncovered_cutouts_zoom_and_view(bundled_pixels):
    """Occlusion maps pass the uncovered cutout's zoom: covering a patch must not also zoom the cutout."""
    scaled, plain = _predictors()
    zooms = scaled.zooms_of(bundled_pixels)
    views = scaled.views_of(bundled_pixels)
    covered = bundled_pixels.copy()
    covered[:, :, 24:40, 24:40] = 0
    assert not np.allclose(scaled.zooms_of(covered), zooms)  # left to itself, covering zooms
    shown = scaled.covered_probabilities(bundled_pixels)(covered)
    plain.canonical = False
    np.testing.assert_array_equal(shown, plain.probabilities(rescale_cutouts(apply_views(covered, views), zooms)))


def test_every_turn_and_mirror_image_gives_the_same_answer_at_the_canonical_scale(bundled_pixels):
    """Turned to the canonical view before zooming: the sky noise beyond a shrunk field cannot turn with the cutout."""
    scaled, _ = _predictors()
    scaled.canonical = True
    def answers(batch):  # all but the bar's position angle, which turns with the cutout
        return [{k: v for k, v in row.items() if k != "bar_pa_deg"} for row in scaled.rows(list(batch))]

    first = answers(bundled_pixels)
    for view in range(1, 8):
        assert answers(np.ascontiguousarray(dihedral_view(bundled_pixels, view))) == first


def test_bars_are_measured_on_the_cutout_as_given(bundled_pixels):
    """Bar lengths are in the cutout's own arcsec: the length network must not see the rescaled cutout."""
    scaled, plain = _predictors()
    if scaled.bar_length is None:
        pytest.skip("the shipped bar model carries no bar-length network")
    rows = scaled.rows(list(bundled_pixels))
    barred = np.array([row["barred"] == 1 for row in rows])
    assert barred.any()
    measured = plain.measure_bars(bundled_pixels, barred)
    for i in np.flatnonzero(barred):
        assert rows[i]["bar_length_arcsec"] == measured[i]["bar_length_arcsec"]


def test_train_records_the_canonical_scale(tiny_labels, tmp_path):
    run = tmp_path / "run"
    assert main(["-q", "galaxy", "train", "--data", str(tiny_labels), "--out", str(run), "--epochs", "1",
                 "--batch-size", "16", "--threads", "1", "--arch", "barnet_fast", "--canonical-scale", "0.7",
                 "1.4"]) == 0
    meta = torch.load(run / "best.pt", weights_only=True)["meta"]
    scale = meta["canonical_scale"]
    assert scale["zoom_range"] == [0.7, 1.4] and 0.05 < scale["bright_fraction"] < 0.95
    # the sizes of the rescaled training cutouts: around the target, where those as cut spread wider
    assert meta["size_range"]["low"] < scale["bright_fraction"] < meta["size_range"]["high"]
    assert GalaxyPredictor.from_checkpoint(run).canonical_scale == scale


@pytest.mark.parametrize("zooms", [("1.2", "1.6"), ("0.6", "0.9"), ("0", "1.5")])
def test_train_refuses_a_canonical_scale_that_leaves_out_1_at_once(tmp_path, capsys, zooms):
    code = main(["galaxy", "train", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "run"),
                 "--canonical-scale", *zooms])
    assert code == 1
    assert capsys.readouterr().err == (f"deepscope: error: --canonical-scale {zooms[0]} {zooms[1]}: give the "
                                       "smallest zoom (at most 1), then the largest (at least 1)\n")
    assert not (tmp_path / "run").exists()
