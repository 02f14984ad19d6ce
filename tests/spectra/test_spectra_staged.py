"""Files read many at a time (GriddedReader, reader processes): what one at a time gives, bad files kept apart."""

import numpy as np
import pandas as pd
import pytest

from deepscope.core.batch import reading
from deepscope.core.batch.options import BatchOptions
from deepscope.errors import BatchError, FormatError
from deepscope.spectra.io.files import read_spectrum
from deepscope.spectra.predictor import SpectraPredictor, predict_spectra

# MILES files share one wavelength solution (one block); the others each have their own.
SAMPLE = ["miles/MILES_res2.50_star_m0001V.fits.gz", "miles/MILES_res2.50_star_m0500V.fits.gz",
          "miles/MILES_res2.50_star_m0700V.fits.gz", "pickles/a0v.fits", "sdss/spec-0618-52049-0372.fits.gz",
          "mkclass/libr18/t010l00p00.rbn.gz", "stelib/STELIB_v3.2_HD034411.fits"]


@pytest.fixture(scope="module")
def predictor():
    return SpectraPredictor.from_checkpoint()


@pytest.fixture
def files(spectra_dir, tmp_path):
    """The sample, a corrupt file and a spectrum redder than the grid, in that order."""
    (tmp_path / "corrupt.fits").write_bytes(b"SIMPLE  =                    T" + b"\0" * 50)
    red = np.arange(6000.0, 9000.0)
    (tmp_path / "red.rbn").write_text("".join(f"{w} 1.0\n" for w in red))
    return [spectra_dir / name for name in SAMPLE] + [tmp_path / "corrupt.fits", tmp_path / "red.rbn"]


def test_files_read_together_are_bit_for_bit_files_read_alone(predictor, files):
    together = predictor.load_many(files)
    for path, item in zip(files[:-2], together):
        alone = predictor.prepare(read_spectrum(path), str(path))
        assert np.array_equal(item.flux, alone.flux) and np.array_equal(item.mask, alone.mask)
        assert (item.snr, item.median_flux) == (alone.snr, alone.median_flux)
    corrupt, red = together[-2:]
    assert isinstance(corrupt, FormatError) and "corrupt or truncated FITS file" in str(corrupt)
    assert isinstance(red, FormatError) and str(red).startswith(f"{files[-1]}: covers only 0% of the model's")
    with pytest.raises(FormatError, match="covers only 0%"):
        predictor.load_input(files[-1])


@pytest.mark.distributed
def test_predict_in_reader_processes_writes_the_rows_threads_write(files, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, path in enumerate(files * 3):
        (folder / f"{i:02d}_{path.name}").symlink_to(path)
    options = dict(partition_size=16, read_threads=2, threads=1, progress=False)
    threaded = tmp_path / "threads.csv"
    with pytest.raises(BatchError, match="6 input") as threads_failed:  # the bad files, after the good rows
        predict_spectra([folder], threaded, options=BatchOptions(**options))
    assert "08_red.rbn: covers only 0% of the model's" in str(threads_failed.value)
    monkeypatch.setattr(reading, "MIN_INPUTS_FOR_PROCESSES", 4)
    monkeypatch.setattr(reading, "CHUNK_SIZE", 5)
    forked = tmp_path / "processes.csv"
    with pytest.raises(BatchError) as processes_failed:
        predict_spectra([folder], forked, options=BatchOptions(**options))
    assert str(processes_failed.value) == str(threads_failed.value)
    rows = pd.read_csv(forked)
    assert len(rows) == 21 and rows.equals(pd.read_csv(threaded))
