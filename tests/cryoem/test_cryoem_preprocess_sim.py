"""Resampling, normalisation, contrast enhancement, frames, targets and the simulator."""

import numpy as np
import pandas as pd
import pytest

from deepscope.cryoem.preprocess import (
    disk_mask, enhance_contrast, load_for_picking, normalize, rescale, to_micrograph_frame, to_working_frame,
)
from deepscope.cryoem.synthetic import ctf_2d, read_structure, simulate_micrograph
from deepscope.errors import FormatError, InputError


@pytest.fixture(scope="module")
def structure(cryoem_dir):
    return read_structure(cryoem_dir / "structures" / "5a1a.cif")


def contrast_to_noise(image, particles, radius):
    rows, cols = np.mgrid[:image.shape[0], :image.shape[1]]
    inside = np.zeros(image.shape, bool)
    for x, y in particles[["x", "y"]].to_numpy():
        inside |= (cols - x) ** 2 + (rows - y) ** 2 < radius**2
    return abs(image[inside].mean() - image[~inside].mean()) / image[~inside].std()


def test_rescale_box_average():
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    small = rescale(image, 0.5)
    assert small.shape == (2, 2)
    assert small[0, 0] == pytest.approx(image[:2, :2].mean())
    with pytest.raises(InputError, match="scale must be positive"):
        rescale(image, 0)


def test_normalize_is_robust_to_hot_pixels():
    rng = np.random.default_rng(0)
    image = rng.normal(100, 5, (64, 64)).astype(np.float32)
    image[0, 0] = 1e6
    out = normalize(image)
    assert abs(float(np.median(out))) < 0.05
    assert 0.8 < out[1:].std() < 1.2 and out.max() == 4.0


def test_beta_galactosidase_model(structure):
    assert 30000 < len(structure.xyz) < 40000
    assert 170 < structure.diameter < 200  # Angstrom; beta-gal is ~180 A across
    assert np.allclose(structure.xyz.mean(axis=0), 0, atol=1e-6)


def test_bad_structure_file(tmp_path):
    path = tmp_path / "broken.cif"
    path.write_text("data_x\n_this is not mmcif\n")
    with pytest.raises(FormatError, match="broken.cif"):
        read_structure(path)


def test_simulation_is_exact_and_reproducible(structure):
    kwargs = dict(shape=(256, 256), n_particles=6, pixel_size=6.0, snr=0.1, seed=3)
    image, particles, diameter = simulate_micrograph(structure, **kwargs)
    again, particles_again, _ = simulate_micrograph(structure, **kwargs)
    assert np.array_equal(image, again) and particles.equals(particles_again)
    assert image.shape == (256, 256) and image.dtype == np.float32
    assert len(particles) == 6 and diameter == pytest.approx(structure.diameter / 6.0)
    centres = particles[["x", "y"]].to_numpy()
    gaps = np.hypot(*(centres[:, None] - centres[None]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(6, 1)].min() >= diameter  # no overlaps
    # SNR is measured inside the particles: there the signal has unit variance
    rows, cols = np.mgrid[:256, :256]
    outside = np.ones((256, 256), bool)
    for x, y in centres:
        outside &= (cols - x) ** 2 + (rows - y) ** 2 > (diameter / 2) ** 2
    clean, _, _ = simulate_micrograph(structure, **{**kwargs, "snr": float("inf")})
    assert clean[~outside].std() == pytest.approx(1.0, rel=1e-3)
    assert (image - clean).std() == pytest.approx(1 / np.sqrt(0.1), rel=0.05)


def test_ctf_starts_at_amplitude_contrast():
    ctf = ctf_2d((64, 64), 2.0, 15000.0)
    assert ctf[0, 0] == pytest.approx(-0.07)
    assert ctf.min() >= -1 and ctf.max() <= 1


def test_contrast_enhancement_raises_particle_contrast(structure):
    image, particles, diameter = simulate_micrograph(structure, (512, 512), 20, 4.0, snr=0.03, seed=1)
    before = contrast_to_noise(image, particles, diameter / 3)
    after = contrast_to_noise(enhance_contrast(image, diameter), particles, diameter / 3)
    assert after > 2 * before


def test_load_for_picking_enhances_raw_mrc_only(structure, tmp_path):
    from deepscope.cryoem.io import write_mrc

    image, _, diameter = simulate_micrograph(structure, (256, 256), 4, 4.0, snr=0.05)
    write_mrc(image, tmp_path / "raw.mrc")
    working, scale, shape = load_for_picking(tmp_path / "raw.mrc", diameter, diameter / 2)
    assert shape == (256, 256) and scale == pytest.approx(0.5)
    assert working.shape == (128, 128)
    # equalised then normalised: uniform values have a robust spread of ~1.47
    assert working.min() >= -4 and working.max() <= 4
    with pytest.raises(InputError, match="enhance must be"):
        load_for_picking(tmp_path / "raw.mrc", diameter, 10, enhance="maybe")


def test_disk_mask_area():
    mask = disk_mask((100, 100), np.array([[50.0, 50.0], [-20.0, 5.0]]), 10.0)
    assert mask.sum() == pytest.approx(np.pi * 100, rel=0.05)  # the off-image disk adds nothing


def test_working_frame_maps_pixel_centres_and_round_trips():
    # micrograph pixels 0..3 bin into working pixel 0 at scale 1/4: its centre is micrograph x = 1.5
    table = pd.DataFrame({"x": [1.5, 5.5], "y": [0.0, 10.0], "score": [0.9, 0.8]})
    working = to_working_frame(table, 0.25)
    assert working["x"].tolist() == [0.0, 1.0] and working["score"].tolist() == [0.9, 0.8]
    back = to_micrograph_frame(working, 0.25)
    assert np.allclose(back[["x", "y"]], table[["x", "y"]])
