"""Re-centring picks on the image: simulated truth, a real crop, and the picker's frames."""

import numpy as np
import pandas as pd
import pytest

from deepscope.cryoem.recentre import recentre_picks, rotational_average
from deepscope.errors import InputError

# Far enough that an unmoved pick fails, inside the search radius (0.25 d).
SHIFT = np.array([6.0, -4.0])


@pytest.fixture(scope="module")
def simulated(cryoem_dir):
    """A raw-like micrograph of 5A1A (the EMPIAR-10017 protein) with exact projected centres."""
    from deepscope.cryoem.synthetic import read_structure, simulate_micrograph

    structure = read_structure(cryoem_dir / "structures" / "5a1a.cif")
    return simulate_micrograph(structure, (512, 512), 30, 4.0, snr=0.3, seed=1)


def test_picks_shifted_by_a_known_amount_return_to_the_simulated_centres(simulated):
    image, truth, diameter = simulated
    shifted = truth.assign(x=truth["x"] + SHIFT[0], y=truth["y"] + SHIFT[1])
    moved = recentre_picks(image, shifted, diameter)
    error = np.hypot(moved["x"] - truth["x"], moved["y"] - truth["y"])
    assert len(truth) >= 15 and np.median(error) < 1.5, f"median error {np.median(error):.2f} px"
    # each pick moved back against the shift: with the sign flipped they would move on, away
    assert np.median(moved["x"] - shifted["x"]) == pytest.approx(-SHIFT[0], abs=1.5)
    assert np.median(moved["y"] - shifted["y"]) == pytest.approx(-SHIFT[1], abs=1.5)
    assert moved["correlation"].between(0, 1).all() and moved["score"].isna().all()


def test_real_crop_converges_to_the_same_centres_from_a_shifted_start(cryoem_dir):
    """EMPIAR-10017 at half size (d = 54 px) with CryoPPP centres.

    The labels themselves sit ~5 px from the image's own centres (see the
    README), so the test asks that a shifted start ends where the labels'
    start ends, and that the move undoes the shift.
    """
    from deepscope.cryoem.io import read_micrograph_reduced
    from deepscope.cryoem.pick_sets import load_pick_set

    stem = "Falcon_2012_06_12-15_07_41_0"  # a training micrograph of the shipped model
    image, factor = read_micrograph_reduced(cryoem_dir / "empiar10017" / "micrographs" / f"{stem}.jpg", 2)
    crop = image[512:1280, 512:1280]  # micrograph pixels 1024-2560
    labels = load_pick_set(cryoem_dir / "empiar10017" / "particles", None, "truth")[stem]
    half = labels.assign(x=(labels["x"] + 0.5) / factor - 0.5 - 512, y=(labels["y"] + 0.5) / factor - 0.5 - 512)
    half = half[half["x"].between(60, 708) & half["y"].between(60, 708)].reset_index(drop=True)
    from_labels = recentre_picks(crop, half, 54.0)
    shifted = half.assign(x=half["x"] + SHIFT[0], y=half["y"] + SHIFT[1])
    from_shifted = recentre_picks(crop, shifted, 54.0)
    apart = np.hypot(from_shifted["x"] - from_labels["x"], from_shifted["y"] - from_labels["y"])
    assert len(half) >= 30 and np.median(apart) < 1.0, f"median {np.median(apart):.2f} px apart"
    assert np.median(from_shifted["x"] - shifted["x"]) < -3 and np.median(from_shifted["y"] - shifted["y"]) > 1.5


def test_picker_recentres_on_a_half_size_micrograph_in_the_micrograph_frame():
    """Working scale 1/4, recentring at 1/2, picks back at full size: off-grid centres within 0.3 px."""
    from deepscope.cryoem.preprocess import rescale
    from test_cryoem_predictor import _BrightnessNet

    from deepscope.cryoem.predictor import Picker

    rng = np.random.default_rng(4)
    rows, cols = 256, 320
    centres = np.array([[x + rng.uniform(-1, 1), y + rng.uniform(-1, 1)]
                        for x in range(40, 300, 48) for y in range(40, 230, 48)])
    yy, xx = np.mgrid[:rows, :cols]
    image = rng.normal(0, 0.01, (rows, cols))
    for x, y in centres:
        image += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 4.0**2))
    picker = Picker(_BrightnessNet(), {"target": "disks", "working_diameter": 8.0, "threshold": 0.6})
    picks = picker.pick(rescale(image, 0.25), 0.25, micrograph=rescale(image, 0.5))
    assert len(picks) == len(centres) and "correlation" in picks
    found = picks[["x", "y"]].to_numpy()
    distance = np.linalg.norm(found[:, None, :] - centres[None, :, :], axis=-1).min(axis=1)
    assert distance.max() <= 0.3, f"picks off their centres by up to {distance.max():.2f} px"


def test_rotational_average_keeps_a_radial_profile_and_symmetrises():
    grid = np.arange(33) - 16
    ring = np.exp(-((np.hypot(grid[:, None], grid[None, :]) - 6) ** 2) / 4)
    assert np.allclose(rotational_average(ring)[16], ring[16], atol=0.05)
    lopsided = ring * (grid[None, :] > 0)
    assert rotational_average(lopsided)[16, 10] == pytest.approx(rotational_average(lopsided)[16, 22])


def test_recentre_refuses_bad_settings_and_passes_empty_picks():
    with pytest.raises(InputError, match="diameter=0"):
        recentre_picks(np.zeros((32, 32)), pd.DataFrame({"x": [1.0], "y": [1.0]}), 0.0)
    assert recentre_picks(np.zeros((32, 32)), pd.DataFrame({"x": [], "y": []}), 8.0).empty


def test_pick_command_recentres_on_request(tmp_path, capsys):
    from deepscope.cli.main import main
    from deepscope.cryoem.coordinates import read_coordinates
    from deepscope.samples import sample_dir

    micrograph = sorted(sample_dir("cryoem").glob("*.jpg"))[0]
    picks = {}
    for name, extra in (("map", []), ("image", ["--recentre"])):
        assert main(["-q", "cryoem", "pick", str(micrograph), "--diameter", "27", "--out", str(tmp_path / name),
                     *extra]) == 0
        picks[name] = read_coordinates(tmp_path / name / f"{micrograph.stem}.star")
    assert len(picks["map"]) == len(picks["image"]) > 300
    moved = np.hypot(picks["image"]["x"] - picks["map"]["x"], picks["image"]["y"] - picks["map"]["y"])
    # every pick is re-centred on the image, none is thrown off by more than the search radius (d/4)
    assert np.median(moved) > 0.3 and moved.max() <= 27 / 4 + 1
