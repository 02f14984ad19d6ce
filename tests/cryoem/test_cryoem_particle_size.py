"""The particle diameter read from the micrographs: --diameter auto, and the check of a given diameter."""

import re

import numpy as np
import pytest
from PIL import Image

from deepscope.cryoem.particle_size import check_diameter, estimate_micrograph_size
from deepscope.errors import DiameterWarning, InputError
from deepscope.samples import sample_dir

# the bundled micrographs are EMPIAR-10017 binned 4x: 27 px particles
SAMPLE = sample_dir("cryoem", "Falcon_2012_06_12-14_33_35_0.jpg")


@pytest.fixture(scope="module")
def binned_twice(tmp_path_factory):
    """The sample binned 2x more: 13.5 px particles, as a user's binned micrograph."""
    path = tmp_path_factory.mktemp("binned") / "binned.png"
    Image.open(SAMPLE).convert("L").resize((512, 512), Image.Resampling.BOX).save(path)
    return path


def test_estimates_within_a_fifth_on_three_kinds_of_micrograph(cryoem_dir, tmp_path):
    from deepscope.cryoem.synthetic import write_simulated_micrographs

    beta_gal = cryoem_dir / "empiar10017" / "micrographs"
    ribosome = cryoem_dir / "ribosome80s_empiar10028" / "micrographs"
    _, simulated = write_simulated_micrographs(cryoem_dir / "structures" / "5a1a.cif", tmp_path, count=1,
                                               n_particles=80, snr=0.05, seed=2)
    cases = [(beta_gal / "Falcon_2012_06_12-15_30_21_0.jpg", 108.0), (ribosome / "061_10028.png", 56.0),
             (ribosome / "313_10028.png", 56.0), (tmp_path / "micrograph_000.mrc", simulated)]
    for path, diameter in cases:
        found = estimate_micrograph_size([path])
        # docs/cryoem.md, "Polarity and particle size": 0.95-0.99 (EMPIAR-10017), 1.05-1.10 (ribosome),
        # 0.99-1.11 (simulated at 45.6 px)
        assert found.diameter == pytest.approx(diameter, rel=0.2), path.name
        assert found.polarity == "dark" and found.micrographs == (path.name,)


def test_inverted_micrograph_has_the_same_size_and_reads_bright(tmp_path):
    pixels = np.asarray(Image.open(SAMPLE).convert("L"))
    Image.fromarray(255 - pixels).save(tmp_path / "bright.png")
    dark, bright = estimate_micrograph_size([SAMPLE]), estimate_micrograph_size([tmp_path / "bright.png"])
    assert dark.polarity == "dark" and bright.polarity == "bright"
    assert bright.diameter == pytest.approx(dark.diameter, rel=0.02)


def test_unbinned_diameter_on_a_binned_micrograph_warns_and_strict_refuses(binned_twice, tmp_path):
    from deepscope.cryoem.predictor import pick_micrographs
    from deepscope.core.batch.options import BatchOptions

    options = BatchOptions(progress=False)
    warned = r"binned.png: --diameter 27 px is 2\.\dx the particle size .*\(1[2-5] px\)"
    with pytest.warns(DiameterWarning, match=warned):
        pick_micrographs([binned_twice], 27.0, tmp_path / "warned", options=options)
    assert (tmp_path / "warned" / "binned.star").is_file()
    with pytest.raises(InputError, match="--diameter 27 px is 2"):
        pick_micrographs([binned_twice], 27.0, tmp_path / "refused", options=options, strict=True)
    assert not (tmp_path / "refused").exists()


def test_auto_picks_like_the_true_diameter(binned_twice, tmp_path):
    from deepscope.cryoem.coordinates import read_coordinates
    from deepscope.cryoem.evaluate import match_picks
    from deepscope.cryoem.predictor import pick_micrographs
    from deepscope.core.batch.options import BatchOptions

    options = BatchOptions(progress=False)
    pick_micrographs([binned_twice], 13.5, tmp_path / "given", options=options)
    pick_micrographs([binned_twice], "auto", tmp_path / "auto", options=options)
    given = read_coordinates(tmp_path / "given" / "binned.star")
    auto = read_coordinates(tmp_path / "auto" / "binned.star")
    assert len(given) > 100 and match_picks(auto, given, 13.5 / 2)["f1"] > 0.9


def test_check_passes_near_the_estimate_and_names_both_numbers():
    check_diameter(140.0, 100.0)  # within 1.5x: silent (warnings are errors here)
    check_diameter(70.0, 100.0)
    with pytest.warns(DiameterWarning, match=r"--diameter 60 px is 1/1\.7 of .* \(100 px\)"):
        check_diameter(60.0, 100.0)


def test_auto_without_particles_is_one_clear_error(tmp_path):
    from deepscope.cryoem.io import write_mrc
    from deepscope.cryoem.particle_size import resolve_diameter

    write_mrc(np.zeros((256, 256), np.float32), tmp_path / "blank.mrc")
    with pytest.raises(InputError, match="blank.mrc: no particle-like blobs .* give --diameter"):
        resolve_diameter([tmp_path / "blank.mrc"], "auto")
    assert resolve_diameter([tmp_path / "blank.mrc"], 50.0) == 50.0  # nothing to check against: no warning


def test_pick_command_warns_in_one_line_naming_both_diameters(binned_twice, tmp_path, capsys):
    import warnings

    from deepscope.cli.main import main

    with warnings.catch_warnings():
        warnings.simplefilter("default", DiameterWarning)  # as outside pytest, where warnings are not errors
        assert main(["-q", "cryoem", "pick", str(binned_twice), "--diameter", "27", "--out",
                     str(tmp_path / "picks")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepscope: warning: ")
    assert re.search(r"binned.png: --diameter 27 px is 2\.\dx the particle size .*\(1[2-5] px\)", lines[0])
    assert (tmp_path / "picks" / "binned.star").is_file()
