"""Synthetic particle shapes and grid conditions of the simulator, and `cryoem simulate SHAPE`."""

import numpy as np
import pytest
import yaml

from deepscope.cli.main import main
from deepscope.cryoem.io import read_coordinates, read_micrograph
from deepscope.cryoem.synthetic import (
    SHAPES, Conditions, _carbon_mask, simulate_micrograph, synthetic_structure,
)
from deepscope.errors import InputError


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_has_the_diameter_asked_for(shape):
    structure = synthetic_structure(shape, 180.0, seed=3)
    assert structure.diameter == pytest.approx(180.0)
    assert np.allclose(structure.xyz.mean(axis=0), 0, atol=1e-9)


def test_shapes_have_their_geometry():
    radius = 100.0
    shell = np.linalg.norm(synthetic_structure("shell", 2 * radius).xyz, axis=1)
    # hollow: nothing in the inner two thirds of the radius
    assert shell.min() > 0.6 * radius
    rod = synthetic_structure("rod", 2 * radius).xyz
    extent = np.sort(np.ptp(rod, axis=0))
    assert extent[2] > 3.5 * extent[1]
    ring = synthetic_structure("ring", 2 * radius).xyz
    # a torus about z: no density near its axis
    assert np.hypot(ring[:, 0], ring[:, 1]).min() > 0.4 * radius


def test_unknown_shape_and_bad_conditions_are_refused():
    with pytest.raises(InputError, match="shape must be one of"):
        synthetic_structure("cube", 100.0)
    with pytest.raises(InputError, match="0 <= carbon < 1"):
        Conditions(carbon=1.2)


def test_particles_avoid_the_carbon_film_and_aggregates_are_not_counted():
    structure = synthetic_structure("sphere", 80.0)
    kwargs = {"shape": (256, 256), "n_particles": 30, "pixel_size": 4.0, "snr": float("inf"), "seed": 5}
    conditions = Conditions(carbon=0.5, aggregates=2)
    image, particles, diameter = simulate_micrograph(structure, **kwargs, conditions=conditions)
    # the film is the simulation's first draw from its seed
    carbon = _carbon_mask((256, 256), 0.5, np.random.default_rng(5))
    assert 0.4 < carbon.mean() < 0.6
    assert len(particles) > 5
    assert not carbon[particles["y"].astype(int), particles["x"].astype(int)].any()
    # the aggregates add density the counted particles do not explain
    plain, plain_particles, _ = simulate_micrograph(structure, **kwargs)
    assert len(particles) <= len(plain_particles)
    assert np.abs(image - image.mean()).sum() != pytest.approx(np.abs(plain - plain.mean()).sum(), rel=0.01)


def test_simulate_command_writes_a_shape_with_its_conditions(tmp_path):
    out = tmp_path / "ring"
    code = main(["-q", "cryoem", "simulate", "ring", "--shape-diameter", "160", "--out", str(out), "--count", "1",
                 "--size", "192", "--particles", "6", "--pixel-size", "8", "--ice", "0.2", "--carbon", "0.2",
                 "--aggregates", "1"])
    assert code == 0
    settings = yaml.safe_load((out / "simulation.yaml").read_text())
    assert settings["structure"] == "ring" and settings["diameter_px"] == pytest.approx(20.0)
    assert (settings["ice"], settings["carbon"], settings["aggregates"]) == (0.2, 0.2, 1)
    assert read_micrograph(out / "micrograph_000.mrc").shape == (192, 192)
    assert 1 <= len(read_coordinates(out / "coords" / "micrograph_000.star")) <= 6


def test_simulate_command_names_a_missing_structure(tmp_path, capsys):
    assert main(["-q", "cryoem", "simulate", "cube", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "cube: no such file, and not a synthetic shape" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
