"""Radial velocity: measured against the model's templates, undone before typing, known ones taken as given."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepscope.cli.main import main
from deepscope.samples import sample_dir
from deepscope.spectra.io.files import read_spectrum
from deepscope.spectra.io.spectrum import Spectrum
from deepscope.spectra.predictor import SpectraPredictor
from deepscope.spectra.preparation.grid import C_KMS, Grid, air_wave, grid_rows, on_grid

# Stars rich in lines, in three formats: a MILES G dwarf, a MKCLASS K giant, a Pickles G dwarf; and an A dwarf.
STARS = ("miles_MILES_res2.50_star_m0081V.fits.gz", "mkclass_t340l30p00.rbn.gz", "pickles_g2v.fits",
         "miles_MILES_res2.50_star_m0006V.fits.gz")


@pytest.fixture(scope="module")
def predictor():
    return SpectraPredictor.from_checkpoint()


def _moved(spectrum, rv):
    """The spectrum as a star moving at ``rv`` km/s (positive receding) would show it, in air."""
    return Spectrum(air_wave(spectrum) * (1.0 + rv / C_KMS), spectrum.flux, spectrum.valid)


def test_grid_rows_undo_a_receding_star_redshift():
    # One absorption line at 4500 A at rest, observed redshifted by +500 km/s.
    grid, rv = Grid(), 500.0
    wave = np.linspace(3800.0, 5600.0, 20000)
    rest = 1.0 - 0.8 * np.exp(-0.5 * ((wave - 4500.0) / 1.5) ** 2)
    observed = np.interp(wave / (1.0 + rv / C_KMS), wave, rest)[None]
    valid = np.ones_like(observed, bool)
    names = ["star"]
    at_rest, *_ = grid_rows(wave, observed, valid, grid, 0.4, names, rv=np.array([rv]))
    as_read, *_ = grid_rows(wave, observed, valid, grid, 0.4, names)
    wrong_way, *_ = grid_rows(wave, observed, valid, grid, 0.4, names, rv=np.array([-rv]))
    line = np.argmin(np.abs(grid.wave - 4500.0))
    assert np.argmin(at_rest[0]) == line
    assert np.argmin(as_read[0]) - line >= 3 and np.argmin(wrong_way[0]) - line >= 5  # 190 km/s pixels


def test_grid_rows_with_no_velocity_gives_the_bits_as_read():
    wave = np.linspace(3800.0, 5600.0, 3000)
    flux = np.random.default_rng(0).random((3, 3000)) + 1.0
    valid = np.ones_like(flux, bool)
    plain = grid_rows(wave, flux, valid, Grid(), 0.4, ["a", "b", "c"])
    rv = np.array([0.0, np.nan, 120.0])
    moved = grid_rows(wave, flux, valid, Grid(), 0.4, ["a", "b", "c"], rv=rv)
    assert np.array_equal(moved[0][:2], plain[0][:2]) and not np.array_equal(moved[0][2], plain[0][2])


@pytest.mark.parametrize("name", STARS)
def test_a_moving_star_is_moved_back_to_rest_before_typing(predictor, name):
    star = read_spectrum(sample_dir("spectra") / name)
    rest, *moved = (predictor.prepare(_moved(star, rv), name) for rv in (0.0, 300.0, -300.0))
    for item, rv in zip(moved, (300.0, -300.0)):
        # The velocity measured is the one put in (plus the star's own, measured at rest) ...
        assert abs(item.rv - rv - rest.rv) < 10.0
        # ... and the spectrum the network sees is the one at rest: a shift left in place, or
        # undone the wrong way, leaves it 300 or 600 km/s (1.6 or 3.2 pixels) off.
        inside = rest.mask & item.mask
        assert np.abs(item.flux - rest.flux)[inside].max() < 0.03 * np.abs(rest.flux[inside]).max()
    rows = predictor.assess([rest, *moved])
    assert rows[1]["sptype"] == rows[0]["sptype"] == rows[2]["sptype"]
    assert rows[1]["rv_kms"] > 250 and rows[2]["rv_kms"] < -250 and 0 < rows[1]["rv_err_kms"] < 10
    assert [row["flag"] for row in rows] == [""] * 3


def test_no_velocity_in_a_featureless_spectrum_is_flagged(predictor):
    wave = np.linspace(3700.0, 5700.0, 4000)
    flat = Spectrum(wave, 1.0 + 0.001 * np.random.default_rng(1).standard_normal(4000), np.ones(4000, bool))
    item = predictor.prepare(flat, "flat")
    row = predictor.assess([item])[0]
    assert np.isnan(item.rv) and np.isnan(row["rv_kms"]) and np.isnan(row["rv_err_kms"])
    assert "no_rv" in row["flag"].split(";")
    # Gridded as read: the same numbers as without the model's templates.
    assert np.array_equal(item.flux, on_grid(flat, predictor.grid)[0])


def test_bulk_table_rows_take_a_known_velocity_or_measure_one(tmp_path):
    star = read_spectrum(sample_dir("spectra") / STARS[0])
    wave = air_wave(star)
    # Row 0 moves at +200 km/s and says so; row 1 at -150 km/s, its velocity not given: measured.
    waves = [wave * (1 + 200 / C_KMS), wave * (1 - 150 / C_KMS), wave]
    table = pa.table({"objid": [0, 1, 2], "wavelength": waves, "flux": [star.flux] * 3, "rv": [200.0, None, 0.0]})
    pq.write_table(table, tmp_path / "survey.parquet")
    out = tmp_path / "pred.csv"
    assert main(["-q", "spectra", "predict", str(tmp_path / "survey.parquet"), "--rv-column", "rv",
                 "--out", str(out)]) == 0
    rows = pd.read_csv(out, keep_default_na=False)
    assert rows["rv_kms"].tolist()[0] == 200.0 and rows["rv_err_kms"].tolist()[0] == ""
    assert rows["rv_kms"].tolist()[2] == 0.0 and rows["rv_err_kms"].tolist()[2] == ""
    assert abs(float(rows["rv_kms"][1]) + 150.0) < 15.0 and float(rows["rv_err_kms"][1]) > 0
    assert rows["sptype"].nunique() == 1


def test_rv_column_is_refused_for_files(tmp_path, capsys):
    code = main(["-q", "spectra", "predict", str(sample_dir("spectra") / STARS[0]), "--rv-column", "rv",
                 "--out", str(tmp_path / "p.csv")])
    assert code == 1
    assert "--rv-column rv: only bulk tables" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_rv_column_must_exist(tmp_path, capsys):
    star = read_spectrum(sample_dir("spectra") / STARS[0])
    pq.write_table(pa.table({"wavelength": [star.wave], "flux": [star.flux]}), tmp_path / "survey.parquet")
    code = main(["-q", "spectra", "predict", str(tmp_path / "survey.parquet"), "--rv-column", "vhelio",
                 "--out", str(tmp_path / "p.csv")])
    assert code == 1
    err = capsys.readouterr().err
    assert "vhelio" in err and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists()


def test_a_velocity_beyond_the_range_searched_is_none(predictor):
    star = read_spectrum(sample_dir("spectra") / STARS[0])
    item = predictor.prepare(_moved(star, 1500.0), "fast")
    assert np.isnan(item.rv) and "no_rv" in predictor.assess([item])[0]["flag"].split(";")


def test_rows_with_their_own_velocities_and_gaps_grid_as_each_alone():
    # A block of rows, one with a gap, each moved by its own velocity: the same numbers as row by row.
    wave = np.linspace(3800.0, 5600.0, 3000)
    flux = np.random.default_rng(2).random((3, 3000)) + 1.0
    valid = np.ones_like(flux, bool)
    valid[1, 100:200] = False
    rv = np.array([0.0, 150.0, -80.0])
    together = grid_rows(wave, flux, valid, Grid(), 0.4, ["a", "b", "c"], rv=rv)
    for i in range(3):
        alone = grid_rows(wave, flux[i:i + 1], valid[i:i + 1], Grid(), 0.4, ["x"], rv=rv[i:i + 1])
        assert np.array_equal(together[0][i], alone[0][0]) and np.array_equal(together[1][i], alone[1][0])
