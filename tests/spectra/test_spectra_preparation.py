"""Batched preparation: the one-spectrum answer in any batch; bulk rows as the one-row reader reads them."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spectra.spectra_helpers import prepare

from deepscope.spectra.flags import der_snr, spectrum_scores_rows
from deepscope.spectra.io.files import Spectrum, read_spectrum
from deepscope.spectra.preparation.continuum import continuum_rows, masked_median, normalise, smooth
from deepscope.spectra.preparation.grid import Grid, on_grid, resample_rows
from deepscope.spectra.io.table_rows import TableLayout, read_rows, resolve_columns, row_spectrum
from deepscope.spectra.io.tables import ParquetTable

# Two or three files of every library we hold: flux calibrated, normalised, rectified and
# blue-only (MKCLASS libr18 covers 45% of the grid), tables and images, air and vacuum.
SAMPLE = ["miles/MILES_res2.50_star_m0001V.fits.gz", "miles/MILES_res2.50_star_m0500V.fits.gz",
          "pickles/a0v.fits", "pickles/m5v.fits", "kesseli2017/templates/A0.fits.gz",
          "sdss/spec-0618-52049-0372.fits.gz", "sdss/spec-7454-56751-0770.fits.gz",
          "mkclass/libr18/t010l00p00.rbn.gz", "stelib/STELIB_v3.2_HD034411.fits"]


def _continuum_one_at_a_time(wave, flux, mask, degree=5, iterations=6):
    """The rule as it was first written, one spectrum and one Legendre.fit at a time: the oracle."""
    x = (np.log(wave) - np.log(wave[0])) / (np.log(wave[-1]) - np.log(wave[0])) * 2 - 1
    use = mask.copy()
    fit = np.polynomial.legendre.Legendre.fit(x[use], flux[use], min(degree, max(use.sum() - 1, 0)))
    for _ in range(iterations):
        resid = flux - fit(x)
        sigma = 1.4826 * np.median(np.abs(resid[use])) + 1e-12
        keep = mask & (resid > -sigma)
        if keep.sum() <= degree + 1:
            break
        use = keep
        fit = np.polynomial.legendre.Legendre.fit(x[use], flux[use], degree)
    return fit(x)


def _prepare_one_at_a_time(spectrum, grid, red_limit=None):
    """The original per-spectrum preparation, with the oracle continuum."""
    flux, mask = on_grid(spectrum, grid, 0.0, red_limit=red_limit)
    flux = smooth(flux, mask, 5.0 / (grid.wave[1] - grid.wave[0]) * grid.wave[0] / np.mean(grid.wave))
    flux = flux / (np.median(np.abs(flux[mask])) or 1.0)
    cont = _continuum_one_at_a_time(grid.wave, flux, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(mask & (cont > 0), flux / cont - 1.0, 0.0)
    return np.stack([np.clip(norm, -1.5, 1.5), mask]).astype(np.float32)


@pytest.fixture(scope="module")
def sample(spectra_dir):
    files = [spectra_dir / name for name in SAMPLE]
    if not all(path.exists() for path in files):
        pytest.skip("sample spectra not found")
    return [read_spectrum(path) for path in files]


@pytest.mark.parametrize("red_limit", [None, 4620.0])
def test_batched_preparation_equals_the_one_at_a_time_rule_to_float32_rounding(sample, red_limit):
    grid = Grid()
    batched = np.stack([prepare(spectrum, grid, red_limit=red_limit) for spectrum in sample])
    alone = np.stack([_prepare_one_at_a_time(spectrum, grid, red_limit) for spectrum in sample])
    # Row 0 is flux / continuum - 1: at most one float32 step of flux / continuum apart, pixel
    # by pixel (the continua agree to 1e-13, 1e-9 where a blue-only spectrum leaves part of the grid).
    assert np.all(np.abs(batched - alone) <= np.spacing(np.float32(1) + np.abs(alone)))
    assert np.array_equal(batched[:, 1], alone[:, 1])


def test_a_spectrum_gets_the_same_bits_alone_and_in_any_batch(sample):
    grid = Grid()
    gridded = [on_grid(spectrum, grid) for spectrum in sample]
    flux, mask = np.stack([f for f, _ in gridded]), np.stack([m for _, m in gridded])
    together = normalise(flux, mask, grid)
    assert np.array_equal(together, np.stack([normalise(f[None], m[None], grid)[0] for f, m in gridded]))
    assert np.array_equal(together[::-1], normalise(flux[::-1], mask[::-1], grid))


def test_rows_sharing_a_grid_resample_as_each_alone(sample):
    miles = sample[0]
    rng = np.random.default_rng(0)
    flux = miles.flux * rng.uniform(0.5, 2.0, (5, 1))
    valid = np.ones(flux.shape, bool)
    valid[2, 1000:1500] = False  # a gap: its own coverage
    edges = Grid().edges
    out, coverage = resample_rows(miles.wave, flux, valid, edges)
    for i in range(5):
        one_flux, one_coverage = resample_rows(miles.wave, flux[i:i + 1], valid[i:i + 1], edges)
        assert np.array_equal(out[i], one_flux[0]) and np.array_equal(coverage[i], one_coverage[0])
        # np.interp on the row's own cumulative integrals: the same bits.
        assert np.array_equal(one_flux[0], _interp_resample(miles.wave, flux[i], valid[i], edges))
    assert coverage[2].min() == 0.0 and coverage[0].min() == 1.0


def _interp_resample(wave, flux, valid, edges):
    mid = 0.5 * (wave[1:] + wave[:-1])
    in_edges = np.concatenate([[wave[0] - (mid[0] - wave[0])], mid, [wave[-1] + (wave[-1] - mid[-1])]])
    width = np.diff(in_edges)
    good = valid.astype(float)
    cum_flux = np.diff(np.interp(edges, in_edges, np.concatenate([[0.0], np.cumsum(flux * good * width)])))
    cum_good = np.diff(np.interp(edges, in_edges, np.concatenate([[0.0], np.cumsum(good * width)])))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cum_good > 0, cum_flux / cum_good, 0.0)


def test_masked_median_is_numpy_median_of_the_kept_values():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(40, 33))
    mask = rng.random((40, 33)) > rng.uniform(0.0, 1.0, (40, 1))
    mask[1:, 0] = True  # odd and even counts, none empty but the first
    mask[0] = False
    got = masked_median(values, mask)
    assert np.isnan(got[0])
    assert all(got[i] == np.median(values[i][mask[i]]) for i in range(1, 40))


def test_continuum_rows_keeps_the_degree_rule_for_rows_with_few_pixels():
    wave = np.linspace(4000.0, 5000.0, 50)
    flux = np.vstack([1.0 + 0.001 * np.arange(50), 2.0 + np.zeros(50)])
    mask = np.ones((2, 50), bool)
    mask[1, 4:] = False  # four pixels: a cubic through them, no clipping
    cont = continuum_rows(wave, flux, mask)
    assert np.allclose(cont[1], _continuum_one_at_a_time(wave, flux[1], mask[1]))
    assert np.allclose(cont[0], _continuum_one_at_a_time(wave, flux[0], mask[0]))


def test_scores_of_rows_equal_the_scores_of_each(sample):
    miles = sample[0]
    flux = np.vstack([miles.flux, -miles.flux, miles.flux * 3.0])
    valid = np.ones(flux.shape, bool)
    valid[2, ::7] = False  # gaps: the one-row path
    snr, median = spectrum_scores_rows(miles.wave, flux, valid, 3850.0, 5550.0)
    for i in range(3):  # the oracle: one spectrum at a time, its valid pixels in range picked by a mask
        kept = flux[i][valid[i] & (miles.wave >= 3850.0) & (miles.wave <= 5550.0)]
        assert (snr[i], median[i]) == (der_snr(kept), float(np.median(kept)))


def test_bulk_rows_are_the_spectra_the_one_row_reader_gives(sample, tmp_path):
    miles = sample[0]
    wave, flux = miles.wave, miles.flux.astype(np.float32)
    shifted = wave + 0.25  # another grid: its own wave array
    gappy = flux.copy()
    gappy[100:200] = np.nan
    rows = {"objid": [0, 1, 2, 3, 4], "wavelength": [wave, shifted, wave, wave, wave],
            "flux": [flux, flux, gappy, flux * 2, flux]}
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table(rows), path)
    layout = TableLayout()
    reader = ParquetTable(path)
    names, spectra, _, failures = read_rows(reader, 0, 5, layout, resolve_columns(reader, layout))
    reader.close()
    assert not failures and len(spectra) == 5
    for i, spectrum in enumerate(spectra):
        one = row_spectrum(names[i], rows["wavelength"][i], rows["flux"][i].astype(float), None, None, "air")
        assert np.array_equal(spectrum.wave, one.wave) and np.array_equal(spectrum.flux, one.flux)
        assert np.array_equal(spectrum.valid, one.valid)
    # One grid, one array: what lets the preparation resample those rows together.
    assert spectra[0].wave is spectra[2].wave is spectra[4].wave and spectra[1].wave is not spectra[0].wave


def test_predictor_prepares_a_file_as_it_prepares_the_same_spectrum_among_others(sample):
    from deepscope.spectra.predictor import SpectraPredictor

    predictor = SpectraPredictor.from_checkpoint()
    miles = sample[0]
    twins = [Spectrum(miles.wave, miles.flux * k, miles.valid) for k in (1.0, 2.0)]
    shared = Spectrum(miles.wave, miles.flux * 3.0, miles.valid)
    too_red = Spectrum(np.arange(6000.0, 9000.0), np.ones(3000), np.ones(3000, bool))
    good, items, failures = predictor.prepare_many([*twins, too_red, shared], ["a", "b", "red", "c"])
    assert good == [0, 1, 3]
    assert failures == [("red", "red: covers only 0% of the model's 3850-5550 A grid (spectrum 6000-8999 A; need 40%)")]
    alone = predictor.prepare(shared, "c")
    assert np.array_equal(items[2].flux, alone.flux) and items[2].snr == alone.snr
    # Finished alone (item.x) or in the batch that assess normalises: the same input.
    batch = normalise(np.stack([i.flux for i in items]), np.stack([i.mask for i in items]), predictor.grid)
    assert np.array_equal(batch[2], alone.x)
    assert predictor.assess(items)[2] == predictor.assess([alone])[0]
