"""Bulk spectrum tables: same rows as per-file prediction, bad rows named and skipped, resumable."""

import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from deepscope.cli.main import main
from deepscope.spectra.io.files import ColumnNames, read_spectrum
from deepscope.spectra.io.table_rows import TableLayout, read_rows, resolve_columns
from deepscope.spectra.io.tables import ParquetTable

PREDICTED = ["sptype", "main_class", "subclass", "lum_class", "code", "temperature_index"]


@pytest.fixture(scope="module")
def miles(spectra_dir):
    """Ten real MILES stars: their files and their spectra as read per file."""
    files = sorted((spectra_dir / "miles").glob("*.fits.gz"))[::97][:10]
    return files, [read_spectrum(path) for path in files]


def _parquet(path, spectra, **extra):
    columns = {**extra, "wavelength": [s.wave for s in spectra], "flux": [s.flux.astype(np.float32) for s in spectra]}
    # Small row groups: partitions then straddle them, as in a real survey file.
    pq.write_table(pa.table(columns), path, row_group_size=3)
    return path


def _fits(path, spectra, shared=False, **extra):
    n = spectra[0].wave.size
    cols = [fits.Column(name=name, format="K", array=np.asarray(values)) for name, values in extra.items()]
    cols += [fits.Column(name="FLUX", format=f"{n}E", array=np.stack([s.flux for s in spectra]))]
    hdus = [fits.PrimaryHDU()]
    if shared:  # one grid for every row, in an image extension of its own
        hdus.append(fits.ImageHDU(spectra[0].wave, name="WAVELENGTH"))
    else:
        cols.append(fits.Column(name="WAVELENGTH", format=f"{n}D", array=np.stack([s.wave for s in spectra])))
    fits.HDUList([*hdus, fits.BinTableHDU.from_columns(cols)]).writeto(path)
    return path


def _hdf5(path, spectra, shared=False, **extra):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as out:
        for name, values in extra.items():
            out[name] = np.asarray(values)
        # Shared: one 1-D grid of its own length for every row.
        out["wavelength"] = spectra[0].wave if shared else np.stack([s.wave for s in spectra])
        out["flux"] = np.stack([s.flux for s in spectra]).astype(np.float32)
    return path


@pytest.fixture(scope="module")
def per_file(miles, tmp_path_factory):
    files, _ = miles
    out = tmp_path_factory.mktemp("per_file") / "pred.csv"
    assert main(["-q", "spectra", "predict", *map(str, files), "--out", str(out)]) == 0
    return pd.read_csv(out)


@pytest.mark.parametrize("write, suffix, shared", [(_parquet, ".parquet", False), (_fits, ".fits", False),
                                                   (_fits, ".fits", True), (_hdf5, ".h5", False), (_hdf5, ".h5", True)])
def test_bulk_rows_equal_per_file_rows(miles, per_file, tmp_path, write, suffix, shared):
    _, spectra = miles
    assert all(np.array_equal(s.wave, spectra[0].wave) for s in spectra)  # MILES: one grid
    table = write(tmp_path / f"survey{suffix}", spectra, objid=np.arange(100, 110), **({"shared": True} if shared else {}))
    out = tmp_path / "bulk.csv"
    assert main(["-q", "spectra", "predict", str(table), "--out", str(out), "--partition-size", "4"]) == 0
    bulk = pd.read_csv(out)
    assert bulk["file"].tolist() == [f"{table}#{i}" for i in range(10)]
    assert bulk["objid"].tolist() == list(range(100, 110))
    pd.testing.assert_frame_equal(bulk[PREDICTED], per_file[PREDICTED])


def test_bad_rows_are_named_and_good_rows_kept(miles, tmp_path, capsys):
    _, spectra = miles
    good = spectra[0]
    wave, flux = good.wave, good.flux
    rows = {"wavelength": [wave, wave[:-1], wave[::-1], wave / 10, wave, None, wave],
            "flux": [flux, flux, flux, flux, np.full(flux.size, np.nan), flux, flux],
            "sptype": ["G5V"] * 7}
    table = tmp_path / "bad.parquet"
    pq.write_table(pa.table(rows), table)
    out = tmp_path / "pred.parquet"
    assert main(["-q", "spectra", "predict", str(table), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    for row, reason in [(1, r"wavelength and flux arrays differ in length \(4299 vs 4300 values\)"),
                        (2, "wavelengths are not increasing"), (3, "look like nanometres"),
                        (4, "no valid flux values"), (5, "wavelength or flux array is missing")]:
        assert re.search(f"{re.escape(str(table))}#{row}: .*{reason}", err)
    written = pd.read_parquet(out)
    assert written["file"].tolist() == [f"{table}#0", f"{table}#6"]
    # The table's own type is kept beside the prediction, not over it.
    assert written["input_sptype"].tolist() == ["G5V", "G5V"] and "sptype" in written


def test_missing_column_is_one_line_before_any_work(miles, tmp_path, capsys):
    table = _parquet(tmp_path / "t.parquet", miles[1][:2])
    out = tmp_path / "pred.csv"
    assert main(["-q", "spectra", "predict", str(table), "--out", str(out), "--flux-column", "f_lambda"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "t.parquet: no column 'f_lambda' (--flux-column)" in err[0]
    assert not out.exists()


def test_named_columns_id_column_and_nanometres_with_a_unit(miles, tmp_path):
    spectra = miles[1][:3]
    field = pa.field("lambda_nm", pa.list_(pa.float64()), metadata={"unit": "nm"})
    table = pa.table({"objid": ["a", "b", "c"], "lambda_nm": [s.wave / 10 for s in spectra],
                      "f_lambda": [s.flux for s in spectra]})
    path = tmp_path / "t.parquet"
    pq.write_table(table.set_column(1, field, table.column(1)), path)
    layout = TableLayout(ColumnNames("lambda_nm", "f_lambda"), id_column="objid")
    reader = ParquetTable(path)
    names, read, carried, failures = read_rows(reader, 0, 3, layout, resolve_columns(reader, layout))
    reader.close()
    assert names == ["a", "b", "c"] and not failures and carried[0] == {"objid": "a"}
    assert np.allclose(read[1].wave, spectra[1].wave)


def test_a_parquet_row_group_is_read_a_batch_at_a_time(tmp_path, monkeypatch):
    # pyarrow writes up to a million rows as one row group: slices of it must not read it whole.
    from deepscope.spectra.io import tables

    monkeypatch.setattr(tables, "PARQUET_BATCH_ROWS", 4)
    flux = np.arange(30 * 5, dtype=np.float32).reshape(30, 5)
    path = tmp_path / "one_group.parquet"
    pq.write_table(pa.table({"objid": np.arange(30), "flux": list(flux)}), path)
    assert pq.ParquetFile(path).num_row_groups == 1
    reader = ParquetTable(path)
    decoded = []
    original = tables._RowGroupStream.take

    def counting_take(stream, lo, hi):
        before = stream.position
        pieces = original(stream, lo, hi)
        decoded.append(stream.position - before)
        return pieces

    monkeypatch.setattr(tables._RowGroupStream, "take", counting_take)
    # In order (as a reader process asks), then back to the start, then one row.
    for start, stop in [(0, 7), (7, 13), (20, 30), (2, 3), (29, 30)]:
        read = reader.read(start, stop, ["objid", "flux"])
        assert read["objid"] == list(range(start, stop))
        assert np.array_equal(read["flux"], flux[start:stop])
    reader.close()
    # Forward slices decode only up to what they need; going back starts the group again.
    assert decoded == [7, 6, 17, 3, 27]


def test_a_slice_gridded_in_chunks_gives_each_row_the_numbers_it_gets_alone(miles, tmp_path):
    # prepare_slice grids a slice on reader threads, a chunk each: no number may depend on the chunk.
    from deepscope.spectra.predictor import SpectraPredictor
    from deepscope.spectra.preparation.continuum import normalise
    from deepscope.spectra.table_source import prepare_slice

    table = _parquet(tmp_path / "t.parquet", miles[1])
    predictor = SpectraPredictor.from_checkpoint()
    layout = TableLayout()
    reader = ParquetTable(table)
    found = resolve_columns(reader, layout)
    (names, items, _, _), (_, chunked, _, _) = (prepare_slice(predictor, reader, 0, 10, layout, found, threads)
                                                for threads in (1, 3))
    reader.close()
    assert len(names) == 10
    for item, other in zip(items, chunked):
        assert np.array_equal(item.flux, other.flux) and np.array_equal(item.mask, other.mask)
        assert (item.snr, item.median_flux) == (other.snr, other.median_flux)
    x = normalise(np.stack([item.flux for item in items]), np.stack([item.mask for item in items]), predictor.grid)
    assert all(np.array_equal(x[k], item.x) for k, item in enumerate(items))


@pytest.mark.parametrize("write, suffix", [(_parquet, ".parquet"), (_fits, ".fits"), (_hdf5, ".h5")])
def test_reader_processes_write_the_rows_this_process_writes(miles, tmp_path, write, suffix):
    # Slices of 300 rows (>= MIN_INPUTS_FOR_PROCESSES) go to 2 reader processes, two in flight,
    # each opening the table itself; --read-threads 1 reads them here. Same rows, same order,
    # same carried columns.
    from deepscope.core.batch.reading import MIN_INPUTS_FOR_PROCESSES, reader_processes
    from deepscope.spectra.predictor import SpectraPredictor

    predictor = SpectraPredictor.from_checkpoint()
    with reader_processes(predictor, 2) as processes:
        assert processes is not None  # Linux: the processes path is the one under test
    assert 300 >= MIN_INPUTS_FOR_PROCESSES
    table = write(tmp_path / f"t{suffix}", miles[1] * 90, objid=np.arange(900))
    frames = []
    for readers in ("2", "1"):
        out = tmp_path / f"pred{readers}.csv"
        assert main(["-q", "spectra", "predict", str(table), "--out", str(out), "--partition-size", "300",
                     "--read-threads", readers]) == 0
        frames.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(*frames)
    assert frames[0]["objid"].tolist() == list(range(900))
    assert frames[0]["sptype"].tolist() == frames[0]["sptype"].tolist()[:10] * 90


def _crash(*args):
    os._exit(1)  # a reader process dies, as one killed or crashed in a decoder would


def test_a_dead_reader_process_costs_no_rows(miles, tmp_path, monkeypatch, caplog):
    from deepscope.spectra import table_source

    monkeypatch.setattr(table_source, "_load_in_reader", _crash)
    spectra = miles[1] * 30
    table = tmp_path / "t.parquet"
    pq.write_table(pa.table({"wavelength": [s.wave for s in spectra], "flux": [s.flux for s in spectra]}), table)
    out = tmp_path / "pred.csv"
    assert main(["-q", "spectra", "predict", str(table), "--out", str(out), "--partition-size", "300",
                 "--read-threads", "2"]) == 0
    assert pd.read_csv(out)["file"].tolist() == [f"{table}#{i}" for i in range(300)]
    assert "reader processes stopped; reading rows 0-300" in caplog.text


def test_killed_run_resumes_and_a_changed_table_is_recomputed(miles, tmp_path):
    table = _parquet(tmp_path / "t.parquet", miles[1][:4])
    out = tmp_path / "parts"
    args = ["-q", "spectra", "predict", str(table), "--out", str(out), "--partition-size", "2"]
    assert main(args) == 0
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 2
    stamps = [p.stat().st_mtime_ns for p in parts]
    assert main(args) == 0
    assert [p.stat().st_mtime_ns for p in parts] == stamps
    _parquet(table, miles[1][:4])  # rewritten: a new modification time
    assert main(args) == 0
    assert all(p.stat().st_mtime_ns != s for p, s in zip(parts, stamps))


@pytest.mark.distributed
def test_two_worker_cluster_writes_the_same_rows(miles, tmp_path):
    table = _fits(tmp_path / "t.fits", miles[1][:6])
    local, cluster = tmp_path / "local.csv", tmp_path / "cluster.csv"
    args = ["-q", "spectra", "predict", str(table), "--partition-size", "2"]
    assert main([*args, "--out", str(local)]) == 0
    assert main([*args, "--out", str(cluster), "--workers", "2"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(local), pd.read_csv(cluster))
