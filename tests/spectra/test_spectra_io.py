"""Spectrum readers: every real format we hold, test-written library formats, bad files."""

import gzip

import numpy as np
import pytest
from astropy.io import fits

from deepscope.errors import FormatError
from deepscope.spectra.io.files import read_spectrum, spectra_manifest
from spectra.spectra_helpers import prepare

from deepscope.spectra.preparation.grid import Grid, resample_rows, to_air

WAVE = np.arange(3700.0, 5700.0, 1.0)
FLUX = 1.0 + 0.1 * np.sin(WAVE / 30.0)


def _image(path, flux, **cards):
    hdu = fits.PrimaryHDU(np.asarray(flux, np.float32))
    for key, value in cards.items():
        hdu.header[key.replace("_", "-") if key == "DC_FLAG" else key] = value
    hdu.writeto(path)
    return path


# --- real files, one per format -------------------------------------------------

@pytest.mark.parametrize("relative, medium, lo, hi", [
    ("miles/MILES_res2.50_star_m0001V.fits.gz", "air", 3540, 7410),          # linear WCS image, gzip
    ("pickles/a0v.fits", "air", 1150, 25000),                                # WAVELENGTH/FLUX table
    ("kesseli2017/templates/G2V.fits.gz", "vacuum", 3650, 10200),            # LogLam table
    ("sdss/spec-0618-52049-0372.fits.gz", "vacuum", 3812, 9202),            # SDSS spec COADD
    ("mkclass/libnor36/t010l00p00.rbn.gz", "air", 3800, 5600),               # gzipped two-column text
    ("stelib/STELIB_v3.2_G319.fits", "air", 3190, 9900),                     # IRAF header cards
])
def test_real_formats(spectra_dir, relative, medium, lo, hi):
    path = spectra_dir / relative
    if not path.exists():  # the Kesseli file names follow the type
        path = sorted(path.parent.glob("G2*"))[0]
    spec = read_spectrum(path)
    assert spec.medium == medium
    assert abs(spec.wave[0] - lo) < 15 and abs(spec.wave[-1] - hi) < 15
    assert np.all(np.diff(spec.wave) > 0)
    assert spec.valid.mean() > 0.9


def test_unsorted_real_file_is_sorted(spectra_dir):
    # libr18/t030l50p00 repeats 3801 A before 3800.5 A in its first row.
    spec = read_spectrum(spectra_dir / "mkclass/libr18/t030l50p00.rbn.gz")
    assert spec.wave[0] == 3800.5 and np.all(np.diff(spec.wave) > 0)


def test_manifest_of_real_libraries(spectra_dir):
    manifest = spectra_manifest([spectra_dir / "mkclass/labels.csv", spectra_dir / "sdss/labels.csv"])
    assert set(manifest["library"]) == {"mkclass", "sdss"}
    assert {"libnor36", "libr18"} <= set(manifest["collection"])
    assert manifest["id"].is_unique and manifest["path"].str.startswith("/").all()


# --- formats of libraries we cannot ship, written here --------------------------

def test_elodie_two_row_image(tmp_path):
    flux = np.stack([FLUX, 0.01 * FLUX])  # flux and error rows, as in ELODIE s1d files
    path = _image(tmp_path / "elodie.fits", flux, CRVAL1=3700.0, CDELT1=1.0, CRPIX1=1.0, CTYPE1="AWAV")
    spec = read_spectrum(path)
    assert np.allclose(spec.wave, WAVE) and np.allclose(spec.flux, FLUX, rtol=1e-6)
    assert (spec.medium, spec.medium_source) == ("air", "header")


@pytest.mark.parametrize("step", [{"CDELT1": 0.5}, {"CD1_1": 0.5}, {"CDELT1": 0.25, "PC1_1": 2.0}])
def test_linear_wcs_reference_pixel_and_step_forms(tmp_path, step):
    # Reference pixel 11 (1-based) at 3705 A, 0.5 A per pixel however the step is written.
    path = _image(tmp_path / "wcs.fits", FLUX, CRVAL1=3705.0, CRPIX1=11.0, CUNIT1="Angstrom", **step)
    spec = read_spectrum(path)
    assert np.allclose(spec.wave[[0, 10, 11]], [3700.0, 3705.0, 3705.5])


def test_cached_wavelength_axis_is_per_solution_and_never_shared(tmp_path):
    # The axis is computed once per set of axis cards: files differing in any one card differ, and a
    # caller writing into one file's wavelengths does not reach the next file's.
    first = read_spectrum(_image(tmp_path / "a.fits", FLUX, CRVAL1=3705.0, CRPIX1=1.0, CDELT1=0.5))
    shifted = read_spectrum(_image(tmp_path / "b.fits", FLUX, CRVAL1=3705.0, CRPIX1=11.0, CDELT1=0.5))
    assert first.wave[0] == 3705.0 and shifted.wave[0] == 3700.0
    first.wave[:] = 0.0
    again = read_spectrum(_image(tmp_path / "c.fits", FLUX, CRVAL1=3705.0, CRPIX1=1.0, CDELT1=0.5))
    assert again.wave[0] == 3705.0 and again.wave[1] == 3705.5


def test_missing_wavelength_step_is_a_clear_error(tmp_path):
    path = _image(tmp_path / "nostep.fits", FLUX, CRVAL1=3700.0, CRPIX1=1.0)
    with pytest.raises(FormatError, match="nostep.fits: no wavelength step in the header"):
        read_spectrum(path)


def test_card_astropy_must_fix_first_still_reads(tmp_path):
    # 'CTYPE1  = LINEAR' (an unquoted string) is unparsable until astropy fixes it: the file is read again, fixed.
    cards = [("SIMPLE", "T"), ("BITPIX", "-32"), ("NAXIS", "1"), ("NAXIS1", "100"), ("CRVAL1", "4000.0"),
             ("CRPIX1", "1.0"), ("CDELT1", "2.0"), ("CTYPE1", "LINEAR")]
    header = "".join(f"{key:<8}= {value:>20}".ljust(80) for key, value in cards[:-1])
    header += "CTYPE1  = LINEAR".ljust(80) + "END".ljust(80)
    data = np.full(100, 3.0, ">f4").tobytes()
    path = tmp_path / "iraf.fits"
    path.write_bytes(header.ljust(2880).encode() + data.ljust(2880, b"\0"))
    spectrum = read_spectrum(path)
    assert spectrum.wave[:2].tolist() == [4000.0, 4002.0] and spectrum.flux.tolist() == [3.0] * 100


def test_indous_zero_gaps_are_masked(tmp_path):
    flux = FLUX.copy()
    flux[500:600] = 0.0  # Indo-US fills coverage gaps with zeros
    path = _image(tmp_path / "indous.fits", flux, CRVAL1=3700.0, CD1_1=1.0, CRPIX1=1.0)
    spec = read_spectrum(path)
    assert not spec.valid[500:600].any() and spec.valid[:500].all()


def test_jacoby_image_and_ascii(tmp_path):
    wave = 3510.0 + 1.4 * np.arange(2799)
    flux = 1.0 + 0.1 * np.cos(wave / 40.0)
    image = _image(tmp_path / "jhc.fits", flux, CRVAL1=3510.0, CDELT1=1.4, CRPIX1=1.0)
    text = tmp_path / "jhc.txt.gz"
    text.write_bytes(gzip.compress("".join(f"{w:.1f} {f:.6f}\n" for w, f in zip(wave, flux)).encode()))
    a, b = read_spectrum(image), read_spectrum(text)
    assert np.allclose(a.wave, b.wave) and np.allclose(a.flux, b.flux, atol=1e-5)


def test_log_linear_iraf_image(tmp_path):
    path = _image(tmp_path / "log.fits", FLUX, CRVAL1=np.log10(3700.0), CDELT1=1e-4, CRPIX1=1.0, DC_FLAG=1)
    spec = read_spectrum(path)
    assert spec.wave[0] == pytest.approx(3700.0) and spec.wave[1] / spec.wave[0] == pytest.approx(10 ** 1e-4)


def test_table_in_nanometres_vacuum(tmp_path):
    cols = [fits.Column(name="LAMBDA", format="D", unit="nm", array=WAVE / 10),
            fits.Column(name="FLUX", format="E", array=FLUX)]
    table = fits.BinTableHDU.from_columns(cols)
    table.header["AIRORVAC"] = "vac"
    path = tmp_path / "nm.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    spec = read_spectrum(path)
    assert np.allclose(spec.wave, WAVE) and spec.medium == "vacuum"


# --- bad files --------------------------------------------------------------------

def test_bad_files(tmp_path):
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    with pytest.raises(FormatError, match="empty.fits: empty file"):
        read_spectrum(empty)
    corrupt = tmp_path / "corrupt.fits"
    corrupt.write_bytes(b"SIMPLE  =                    T" + b"\x00" * 50)
    with pytest.raises(FormatError, match="corrupt.fits: corrupt or truncated FITS"):
        read_spectrum(corrupt)
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("this is not\na spectrum at all\n")
    with pytest.raises(FormatError, match="garbage.txt: not a two-column numeric spectrum"):
        read_spectrum(garbage)
    nan = _image(tmp_path / "nan.fits", np.full(100, np.nan), CRVAL1=4000.0, CDELT1=1.0)
    with pytest.raises(FormatError, match="nan.fits: no valid flux values"):
        read_spectrum(nan)
    nowcs = _image(tmp_path / "nowcs.fits", FLUX)
    with pytest.raises(FormatError, match="nowcs.fits: no wavelength solution"):
        read_spectrum(nowcs)


def test_table_without_flux_column_names_what_it_found(tmp_path):
    cols = [fits.Column(name="WAVELENGTH", format="D", array=WAVE),
            fits.Column(name="COUNTS_X", format="E", array=FLUX)]
    path = tmp_path / "noflux.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    with pytest.raises(FormatError, match="noflux.fits: no wavelength and flux columns.*COUNTS_X"):
        read_spectrum(path)


# --- preprocessing ----------------------------------------------------------------

def test_to_air_matches_sdss_convention():
    assert to_air(np.array([4862.68]))[0] == pytest.approx(4861.32, abs=0.02)  # H-beta


def test_resample_conserves_mean_and_reports_gaps():
    wave = np.arange(4000.0, 5000.0, 0.5)
    flux = np.full(wave.size, 2.0)
    valid = np.ones(wave.size, bool)
    valid[(wave > 4400) & (wave < 4500)] = False
    edges = np.linspace(3900, 5100, 61)
    (out,), (coverage,) = resample_rows(wave, flux[None], valid[None], edges)
    assert np.allclose(out[coverage > 0.5], 2.0)
    assert coverage[0] == 0 and coverage[30] == 1 and coverage[(edges[:-1] > 4410) & (edges[1:] < 4490)].max() == 0


def test_prepare_shape_mask_and_coverage_error(tmp_path):
    from deepscope.spectra.io.files import Spectrum

    spec = Spectrum(WAVE, FLUX, np.ones(WAVE.size, bool))
    x = prepare(spec, Grid(3850, 5550, 580))
    assert x.shape == (2, 580) and x.dtype == np.float32 and x[1].all()
    assert abs(float(np.median(x[0]))) < 0.15  # continuum-normalised around zero
    red = Spectrum(np.arange(6000.0, 9000.0), np.ones(3000), np.ones(3000, bool))
    with pytest.raises(FormatError, match="red.fits: covers only 0% of the model's 3850-5550 A grid"):
        prepare(red, Grid(), path="red.fits")


def test_red_limit_prepares_a_spectrum_as_if_it_ended_there():
    from deepscope.spectra.io.files import Spectrum

    grid = Grid(3850, 5550, 580)
    tilted = Spectrum(WAVE, FLUX * np.exp((WAVE - 4700) / 900), np.ones(WAVE.size, bool))
    full = prepare(tilted, grid)
    short = prepare(tilted, grid, red_limit=4620.0)
    assert short[1].sum() == (grid.wave <= 4620.0).sum() and not short[0][grid.wave > 4620.0].any()
    # the continuum is refitted to the short range, not cut out of the full fit
    assert not np.allclose(short[0][short[1] > 0], full[0][short[1] > 0], atol=1e-3)
    assert abs(float(np.median(short[0][short[1] > 0]))) < 0.15


@pytest.mark.parametrize("unit, scale", [
    (None, 1.0), ("", 1.0), ("Angstrom", 1.0), ("angstroms", 1.0), ("A", 1.0), ("AA", 1.0), ("0.1 nm", 1.0),
    ("nm", 10.0), ("NM", 10.0), ("nanometer", 10.0), ("um", 1e4), ("micron", 1e4), ("microns", 1e4),
    ("m", 1e10), ("meter", 1e10), ("cm", 1e8),
])
def test_wavelength_units_convert_exactly(unit, scale):
    from deepscope.spectra.io.spectrum import wavelength_scale

    assert wavelength_scale("star.fits", unit) == scale


@pytest.mark.parametrize("unit", ["Hz", "erg/s", "parsecs of fog"])
def test_non_length_wavelength_unit_is_refused(unit):
    from deepscope.spectra.io.spectrum import wavelength_scale

    with pytest.raises(FormatError, match="star.fits: unsupported wavelength unit"):
        wavelength_scale("star.fits", unit)
