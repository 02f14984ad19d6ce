"""Text spectra with header lines and any delimiter; named columns in text and FITS tables; text spectra in folders."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from deepscope.cli.main import main
from deepscope.errors import FormatError
from deepscope.samples import sample_dir
from deepscope.spectra.io.files import ColumnNames, read_spectrum

WAVE = np.arange(4000.0, 4100.0, 1.0)
FLUX = 1.0 + 0.1 * np.sin(WAVE / 7.0)


def _lines(*columns, delimiter):
    return "\n".join(delimiter.join(f"{value:.6f}" for value in row) for row in zip(*columns)) + "\n"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|", " "])
def test_header_line_and_delimiter_are_sniffed(tmp_path, delimiter):
    path = tmp_path / "star.csv"
    path.write_text(f"wavelength{delimiter}flux\n" + _lines(WAVE, FLUX, delimiter=delimiter))
    spec = read_spectrum(path)
    assert np.allclose(spec.wave, WAVE) and np.allclose(spec.flux, FLUX)


def test_known_names_pick_columns_in_any_order(tmp_path):
    path = tmp_path / "star.csv"
    path.write_text("flux,id,lambda\n" + "".join(f"{f},s{i},{w}\n" for i, (w, f) in enumerate(zip(WAVE, FLUX))))
    spec = read_spectrum(path)
    assert np.allclose(spec.wave, WAVE) and np.allclose(spec.flux, FLUX)


def test_named_columns_in_text_with_commented_header_and_ivar(tmp_path):
    ivar = np.where(np.arange(WAVE.size) < 10, 0.0, 4.0)
    path = tmp_path / "star.txt.gz"
    text = "# lambda_A f_lambda ivar\n" + _lines(WAVE, FLUX, ivar, delimiter="\t")
    path.write_bytes(gzip.compress(text.encode()))
    spec = read_spectrum(path, columns=ColumnNames("LAMBDA_A", "f_lambda", "ivar"))
    assert np.allclose(spec.wave, WAVE) and spec.valid.sum() == WAVE.size - 10


def test_headerless_text_reads_as_before(tmp_path):
    path = tmp_path / "star.dat"
    path.write_text("# no names here\n" + _lines(WAVE, FLUX, np.zeros_like(WAVE), delimiter="  "))
    spec = read_spectrum(path)
    assert np.allclose(spec.wave, WAVE) and np.allclose(spec.flux, FLUX)


def test_log_wavelength_text_column(tmp_path):
    path = tmp_path / "star.csv"
    path.write_text("loglam,flux\n" + _lines(np.log10(WAVE), FLUX, delimiter=","))
    # Six decimals of log10 are 0.01 A here.
    assert np.allclose(read_spectrum(path).wave, WAVE, atol=0.02)


def test_named_text_column_errors(tmp_path):
    named = tmp_path / "named.csv"
    named.write_text("wavelength,flux\n" + _lines(WAVE, FLUX, delimiter=","))
    with pytest.raises(FormatError, match=r"named.csv: no column 'fnu' \(--flux-column\); columns: wavelength, flux"):
        read_spectrum(named, columns=ColumnNames(flux="fnu"))
    bare = tmp_path / "bare.txt"
    bare.write_text(_lines(WAVE, FLUX, delimiter=" "))
    with pytest.raises(FormatError, match="bare.txt: --wave-column 'w' given but the file has no header line"):
        read_spectrum(bare, columns=ColumnNames(wave="w"))


def test_fits_table_with_named_columns(tmp_path):
    cols = [fits.Column(name="lambda_A", format="D", array=WAVE), fits.Column(name="f_lambda", format="E", array=FLUX),
            fits.Column(name="FLUX", format="E", array=np.ones_like(FLUX))]
    path = tmp_path / "named.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    with pytest.raises(FormatError, match="named.fits: no wavelength and flux columns.*--wave-column"):
        read_spectrum(path)
    spec = read_spectrum(path, columns=ColumnNames("lambda_A", "f_lambda"))
    assert np.allclose(spec.wave, WAVE) and np.allclose(spec.flux, FLUX, rtol=1e-6)
    with pytest.raises(FormatError, match=r"named.fits: no table has the named columns \(--wave-column 'lambda_A', --flux-column 'fl'\); HDU 1: lambda_A, f_lambda, FLUX"):
        read_spectrum(path, columns=ColumnNames("lambda_A", "fl"))


def test_predictor_reads_with_named_columns_and_vacuum(spectra_dir, tmp_path):
    from deepscope.spectra.predictor import SpectraPredictor

    star = read_spectrum(spectra_dir / "miles/MILES_res2.50_star_m0001V.fits.gz")
    path = tmp_path / "star.csv"
    path.write_text("f_lambda,lambda_A\n" + _lines(star.flux, star.wave, delimiter=","))
    air = SpectraPredictor.from_checkpoint(None, columns=ColumnNames("lambda_A", "f_lambda"))
    vacuum = SpectraPredictor.from_checkpoint(None, columns=ColumnNames("lambda_A", "f_lambda"),
                                              default_medium="vacuum")
    # Vacuum wavelengths are about 1.4 A longer here: the features move on the grid.
    assert not np.array_equal(air.load_input(path).flux, vacuum.load_input(path).flux)


def test_directories_pick_up_text_spectra_but_not_tables_or_notes(tmp_path, capsys):
    star = read_spectrum(sample_dir("spectra") / "miles_MILES_res2.50_star_m0081V.fits.gz")
    folder = tmp_path / "survey"
    (folder / "night2").mkdir(parents=True)
    columns = np.column_stack([star.wave, star.flux])
    np.savetxt(folder / "plain.txt", columns)
    np.savetxt(folder / "night2" / "named.csv", columns, delimiter=",", header="wavelength,flux", comments="")
    with gzip.open(folder / "night2" / "zipped.dat.gz", "wt") as handle:
        np.savetxt(handle, columns, header="lambda flux")
    (folder / "labels.csv").write_text("file,sptype\nplain.txt,G1V\n")
    (folder / "README.txt").write_text("Spectra of the night.\nTaken with care.\n")
    (folder / "broken.fits").write_bytes(b"SIMPLE  = nonsense" * 10)
    out = tmp_path / "pred.csv"
    capsys.readouterr()
    assert main(["-q", "spectra", "predict", str(folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    # The one unreadable spectrum is listed; the table and the notes were never inputs.
    assert "1 input(s) failed" in err and "broken.fits" in err
    assert "labels.csv" not in err and "README.txt" not in err
    rows = pd.read_csv(out)
    assert sorted(Path(f).name for f in rows["file"]) == ["named.csv", "plain.txt", "zipped.dat.gz"]
    assert rows["sptype"].nunique() == 1
