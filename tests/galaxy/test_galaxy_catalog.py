"""Galaxy catalogues: sample cuts (catalog.py), sky cross-match (crossmatch.py) and their commands."""

import logging

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table
from synthetic_galaxies import offset_positions

from deepscope.cli.main import main
from deepscope.errors import InputError
from deepscope.galaxy.catalog import column_values, find_column, select_sample
from deepscope.galaxy.crossmatch import crossmatch, jname_positions, unique_names
from deepscope.galaxy.synthetic import synthetic_catalog


@pytest.fixture(scope="module")
def catalog():
    return synthetic_catalog(n=400, seed=1)


def _expected_mask(table, mag="petroMag_r"):
    return (
        (table[mag] > 14) & (table[mag] < 17.4) & (table["z"] < 0.2)
        & (table["petroR50_r"] >= 5) & (table["petroR50_r"] <= 30)
    ).to_numpy()


def _write(table, path):
    if path.suffix == ".csv":
        table.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        Table.from_pandas(table).write(path)
    return path


def _one_error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("deepscope: error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- select ------------------------------------------------------------------


def test_select_applies_the_three_cuts(catalog):
    selected, counts = select_sample(catalog)
    expected = catalog[_expected_mask(catalog)]
    assert 0 < len(selected) < len(catalog)
    np.testing.assert_array_equal(selected["objID"], expected["objID"])
    assert [n for _, n in counts] == [
        len(catalog),
        int(((catalog.petroMag_r > 14) & (catalog.petroMag_r < 17.4)).sum()),
        int(((catalog.petroMag_r > 14) & (catalog.petroMag_r < 17.4) & (catalog.z < 0.2)).sum()),
        len(expected),
    ]


def test_select_drops_sdss_missing_values(catalog):
    assert (catalog["petroMag_r"] == -9999).any()
    selected, _ = select_sample(catalog)
    assert (selected["petroMag_r"] > 14).all()


def test_select_bounds_are_overridable(catalog):
    selected, _ = select_sample(catalog, r_min=15, r_max=16, z_max=0.1, radius_min=10, radius_max=20)
    assert len(selected) > 0
    assert selected["petroMag_r"].between(15, 16).all()
    assert (selected["z"] < 0.1).all()
    assert selected["petroR50_r"].between(10, 20).all()


def test_select_magnitude_priority_and_override(catalog):
    without_petro = catalog.drop(columns="petroMag_r")
    selected, counts = select_sample(without_petro)
    assert "modelMag_r" in counts[1][0]
    expected = without_petro[_expected_mask(without_petro, "modelMag_r")]
    np.testing.assert_array_equal(selected["objID"], expected["objID"])
    selected, counts = select_sample(catalog, mag_column="modelMag_r")
    assert "modelMag_r" in counts[1][0]


def test_select_matches_upper_case_fits_names(catalog):
    upper = catalog.rename(columns=str.upper)
    selected, _ = select_sample(upper)
    assert len(selected) == _expected_mask(catalog).sum()


def test_select_warns_when_nothing_passes(catalog, caplog):
    # Radii given in pixels instead of arcsec, say: nothing in range.
    with caplog.at_level(logging.WARNING, logger="deepscope.galaxy.catalog"):
        selected, counts = select_sample(catalog.assign(petroR50_r=catalog["petroR50_r"] * 100), source="c.csv")
    assert selected.empty and counts[-1][1] == 0
    assert any("c.csv: no row passes every cut" in r.getMessage() for r in caplog.records)


def test_select_rejects_empty_ranges_and_text_columns(catalog):
    with pytest.raises(InputError, match="empty magnitude range"):
        select_sample(catalog, r_min=18, r_max=17)
    with pytest.raises(InputError, match="empty radius range"):
        select_sample(catalog, radius_min=30, radius_max=5)
    text = catalog.assign(z="unknown")
    with pytest.raises(InputError, match=r"cat\.csv: column 'z' is not numeric"):
        select_sample(text, source="cat.csv")


def test_select_without_any_magnitude_column(catalog):
    bare = catalog.drop(columns=["petroMag_r", "modelMag_r"])
    with pytest.raises(InputError, match=r"gals\.fits: no r-band magnitude column \(tried petroMag_r"):
        select_sample(bare, source="gals.fits")


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".parquet"])
def test_select_command_reads_every_format(tmp_path, catalog, suffix, capsys, caplog):
    source = _write(catalog, tmp_path / f"catalog{suffix}")
    out = tmp_path / "sample.parquet"
    with caplog.at_level(logging.INFO, logger="deepscope.galaxy.catalog"):
        assert main(["galaxy", "select", str(source), "--out", str(out)]) == 0
    sample = pd.read_parquet(out)
    np.testing.assert_array_equal(sample["objID"], catalog[_expected_mask(catalog)]["objID"])
    assert list(sample.columns) == list(catalog.columns)
    assert f"selected {len(sample)} of {len(catalog)}" in capsys.readouterr().out
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("14 < petroMag_r < 17.4") for m in messages)
    assert any("z < 0.2" in m for m in messages)


def test_select_command_csv_round_trip_with_options(tmp_path, catalog):
    source = _write(catalog, tmp_path / "catalog.csv")
    out = tmp_path / "sample.csv"
    argv = ["galaxy", "select", str(source), "--out", str(out), "--r-max", "16", "--z-max", "0.15",
            "--radius-min", "8", "--radius-column", "deVRad_r"]
    assert main(argv) == 0
    sample = pd.read_csv(out)
    assert len(sample) > 0
    assert (sample["petroMag_r"] < 16).all() and (sample["z"] < 0.15).all() and (sample["deVRad_r"] >= 8).all()


def test_select_command_missing_column(tmp_path, catalog, capsys):
    source = _write(catalog.drop(columns="z"), tmp_path / "catalog.csv")
    out = tmp_path / "sample.csv"
    assert main(["galaxy", "select", str(source), "--out", str(out)]) == 1
    line = _one_error_line(capsys)
    assert str(source) in line and "missing column 'z'" in line
    assert not out.exists()


def test_select_command_unnamed_magnitude_column(tmp_path, catalog, capsys):
    source = _write(catalog, tmp_path / "catalog.parquet")
    assert main(["galaxy", "select", str(source), "--out", str(tmp_path / "s.csv"), "--mag-column", "petroMag_g"]) == 1
    assert "missing column 'petroMag_g'; name the right one with --mag-column" in _one_error_line(capsys)


def _photoobj(catalog):
    """The catalogue as a photoObj table: PETROMAG, PETROR50 with the five bands u, g, r, i, z per row."""
    offsets = np.array([2.0, 1.0, 0.0, -0.3, -0.5])  # r is element 2
    scales = np.array([1.2, 1.1, 1.0, 0.95, 0.9])
    return pd.DataFrame({
        "OBJID": catalog["objID"], "Z": catalog["z"],
        "PETROMAG": list(catalog["petroMag_r"].to_numpy()[:, None] + offsets),
        "PETROR50": list(catalog["petroR50_r"].to_numpy()[:, None] * scales),
    })


@pytest.mark.parametrize("suffix", [".fits", ".parquet"])
@pytest.mark.parametrize("how", [["--mag-column", "petroMag", "--radius-column", "petroR50", "--band", "r"],
                                 ["--mag-column", "petroMag[2]", "--radius-column", "PETROR50[2]"],
                                 ["--mag-column", "petroMag[r]", "--radius-column", "petroR50[r]"],
                                 ["--radius-column", "petroR50"]])
def test_select_reads_photoobj_array_columns(tmp_path, catalog, suffix, how):
    source = _write(_photoobj(catalog), tmp_path / f"photoObj{suffix}")
    out = tmp_path / "sample.csv"
    assert main(["galaxy", "select", str(source), "--out", str(out), "--z-column", "z", *how]) == 0
    np.testing.assert_array_equal(pd.read_csv(out)["OBJID"], catalog[_expected_mask(catalog)]["objID"])


def test_select_band_picks_another_element(catalog):
    table = _photoobj(catalog)
    selected, counts = select_sample(table, z_column="Z", mag_column="petroMag", radius_column="petroR50", band="g")
    g_mag = catalog["petroMag_r"] + 1.0
    g_radius = catalog["petroR50_r"] * 1.1
    expected = (g_mag > 14) & (g_mag < 17.4) & (catalog["z"] < 0.2) & g_radius.between(5, 30)
    np.testing.assert_array_equal(selected["OBJID"], catalog[expected.to_numpy()]["objID"])
    assert counts[1][0] == "14 < PETROMAG[1] < 17.4"


def test_array_column_without_a_band_is_refused_with_the_way_out(catalog):
    table = _photoobj(catalog)
    with pytest.raises(InputError, match=r"p\.fits: column 'PETROMAG' holds 5 values per row.*--mag-column 'PETROMAG\[2\]'"):
        column_values(table, "petroMag", source="p.fits", option="--mag-column")
    with pytest.raises(InputError, match=r"'Z' holds one value per row; --z-column takes no \[2\]"):
        column_values(table, "Z[2]", source="p.fits", option="--z-column")
    with pytest.raises(InputError, match=r"'PETROMAG' has 5 values per row, no index 7"):
        column_values(table, "petroMag[7]", source="p.fits")
    # A column literally called "x[1]" is that column, not an element of "x".
    label, values = column_values(pd.DataFrame({"x[1]": [3.0]}), "x[1]")
    assert label == "x[1]" and values.tolist() == [3.0]


@pytest.mark.parametrize(("drop", "option"), [("z", "--z-column"), ("petroR50_r", "--radius-column")])
def test_select_command_missing_column_names_its_option(tmp_path, catalog, capsys, drop, option):
    source = _write(catalog.drop(columns=drop), tmp_path / "catalog.csv")
    assert main(["galaxy", "select", str(source), "--out", str(tmp_path / "s.csv")]) == 1
    line = _one_error_line(capsys)
    assert f"missing column {drop!r}; name the right one with {option}" in line


def test_select_command_checks_the_output_first(tmp_path, capsys):
    # The catalogue does not exist: the bad output must be reported first.
    assert main(["galaxy", "select", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "sample.txt")]) == 1
    assert "sample.txt: unsupported table format" in _one_error_line(capsys)


def test_select_command_unreadable_catalogue(tmp_path, capsys):
    source = tmp_path / "catalog.fits"
    source.write_text("not a fits table")
    assert main(["galaxy", "select", str(source), "--out", str(tmp_path / "s.csv")]) == 1
    line = _one_error_line(capsys)
    assert str(source) in line and "cannot read table" in line


# --- crossmatch --------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(2)
    return pd.DataFrame({
        "objID": np.arange(200),
        "ra": rng.uniform(120.0, 240.0, 200),
        "dec": rng.uniform(-10.0, 70.0, 200),
        "label": "sample",
    })


def _labels(sample, offsets, seed=0, **columns):
    ra, dec = offset_positions(sample["ra"], sample["dec"], offsets, seed=seed)
    return pd.DataFrame({"RAJ2000": ra, "DEJ2000": dec, "source_id": sample["objID"] + 1000, **columns})


def test_crossmatch_with_known_offsets(sample):
    offsets = np.where(np.arange(200) % 4 == 0, 4.0, 0.7)
    labels = _labels(sample, offsets, bar=np.arange(200) % 2)
    out = crossmatch(sample, [("na10", labels)], radius_arcsec=2.0)
    kept = offsets <= 2.0
    assert len(out) == kept.sum()
    np.testing.assert_array_equal(out["objID"], sample["objID"][kept])
    np.testing.assert_array_equal(out["source_id"], out["objID"] + 1000)
    np.testing.assert_allclose(out["na10_sep_arcsec"], 0.7, atol=1e-6)
    np.testing.assert_array_equal(out["bar"], np.arange(200)[kept] % 2)


def test_crossmatch_keeps_unmatched_rows_empty(sample):
    offsets = np.where(np.arange(200) < 50, 10.0, 0.1)
    out = crossmatch(sample, [("gz2", _labels(sample, offsets))], radius_arcsec=1.0, keep_unmatched=True)
    assert len(out) == 200
    assert out["source_id"].isna().sum() == 50
    assert out["gz2_sep_arcsec"].isna().sum() == 50
    assert out["source_id"].iloc[50:].eq(out["objID"].iloc[50:] + 1000).all()


def test_crossmatch_nearest_wins_among_neighbours(sample):
    near = _labels(sample, 0.3, seed=1, flag=1)
    far = _labels(sample, 1.5, seed=2, flag=0)
    labels = pd.concat([far, near], ignore_index=True)
    out = crossmatch(sample, [("cat", labels)], radius_arcsec=2.0)
    assert len(out) == 200
    assert (out["flag"] == 1).all()


def test_crossmatch_prefixes_colliding_columns_and_several_catalogues(sample):
    gz2 = _labels(sample, 0.2, seed=3, label="gz2 label")
    na10 = _labels(sample, 0.4, seed=4, label="na10 label")
    out = crossmatch(sample, [("gz2", gz2), ("na10", na10)], radius_arcsec=1.0)
    assert (out["label"] == "sample").all()
    assert (out["gz2_label"] == "gz2 label").all()
    assert (out["na10_label"] == "na10 label").all()
    # The second catalogue's coordinates collide with the first's.
    assert {"RAJ2000", "na10_RAJ2000", "gz2_sep_arcsec", "na10_sep_arcsec"} <= set(out.columns)


def test_crossmatch_named_coordinate_columns(sample):
    renamed = sample.rename(columns={"ra": "alpha", "dec": "delta"})
    labels = _labels(sample, 0.5).rename(columns={"RAJ2000": "RA_deg", "DEJ2000": "Dec_deg"})
    with pytest.raises(InputError, match=r"s\.csv: no sky coordinate columns"):
        crossmatch(renamed, [("l", labels)], 1.0, sample_name="s.csv")
    out = crossmatch(renamed, [("l", labels)], 1.0, ra_column="alpha", dec_column="delta",
                     label_ra_column="RA_deg", label_dec_column="Dec_deg")
    assert len(out) == 200


def test_crossmatch_rejects_bad_inputs(sample):
    labels = _labels(sample, 0.5)
    with pytest.raises(InputError, match="positive number of arcsec"):
        crossmatch(sample, [("l", labels)], 0.0)
    with pytest.raises(InputError, match=r"l: the label catalogue has no rows"):
        crossmatch(sample, [("l", labels.iloc[:0])], 1.0)
    with pytest.raises(InputError, match=r"s: column 'dec' has .* outside \[-90, 90\]"):
        crossmatch(sample.assign(dec=sample["dec"] * 60), [("l", labels)], 1.0, sample_name="s")
    with pytest.raises(InputError, match="give both the ra and the dec column"):
        crossmatch(sample, [("l", labels)], 1.0, ra_column="ra")


def test_crossmatch_single_label_row_and_missing_coordinates(sample):
    labels = _labels(sample.iloc[:1], 0.1)
    holed = sample.copy()
    holed.loc[1, "ra"] = np.nan
    out = crossmatch(holed, [("one", labels)], 1.0, keep_unmatched=True)
    assert out["source_id"].notna().tolist() == [True] + [False] * 199


def test_find_column_and_unique_names(tmp_path):
    table = pd.DataFrame({"Ra": [1.0], "RA": [2.0]})
    with pytest.raises(InputError, match="ambiguous"):
        find_column(table, "ra")
    assert find_column(table, "RA") == "RA"
    assert unique_names([tmp_path / "a" / "gz2.csv", tmp_path / "gz2.fits.gz"]) == ["gz2", "gz2_2"]


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".parquet"])
def test_crossmatch_command(tmp_path, sample, suffix, capsys):
    sample_path = _write(sample, tmp_path / f"sample{suffix}")
    offsets = np.where(np.arange(200) < 20, 5.0, 0.5)
    gz2 = _write(_labels(sample, offsets, gz2_bar_fraction=0.5), tmp_path / "gz2.csv")
    out = tmp_path / "matched.csv"
    argv = ["galaxy", "crossmatch", str(sample_path), str(gz2), "--radius", "1.5", "--out", str(out)]
    assert main(argv) == 0
    matched = pd.read_csv(out)
    assert len(matched) == 180
    assert matched["gz2_sep_arcsec"].between(0.49, 0.51).all()
    assert "wrote 180 of 200 sample rows" in capsys.readouterr().out
    assert main([*argv, "--keep-unmatched"]) == 0
    assert len(pd.read_csv(out)) == 200


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_crossmatch_keeps_64_bit_ids_exact(tmp_path, sample, suffix):
    # SDSS objIDs exceed 2**53: a float round trip would change them.
    ids = np.int64(1_237_648_720_143_450_401) + np.arange(200, dtype=np.int64)
    labels = _write(_labels(sample, np.where(np.arange(200) < 10, 9.0, 0.1)).assign(objid=ids), tmp_path / "l.csv")
    sample_path = _write(sample, tmp_path / "s.csv")
    out = tmp_path / f"m{suffix}"
    argv = ["galaxy", "crossmatch", str(sample_path), str(labels), "--radius", "1", "--out", str(out)]
    for extra, rows in (([], 190), (["--keep-unmatched"], 200)):
        assert main([*argv, *extra]) == 0
        table = pd.read_csv(out, dtype={"objid": "Int64"}) if suffix == ".csv" else pd.read_parquet(out)
        assert len(table) == rows
        assert table["objid"].dropna().astype("int64").tolist() == ids[10:].tolist()


def test_crossmatch_command_missing_coordinates(tmp_path, sample, capsys):
    sample_path = _write(sample, tmp_path / "sample.csv")
    labels = _write(pd.DataFrame({"x": [1.0], "y": [2.0]}), tmp_path / "labels.csv")
    out = tmp_path / "matched.parquet"
    assert main(["galaxy", "crossmatch", str(sample_path), str(labels), "--out", str(out)]) == 1
    line = _one_error_line(capsys)
    assert str(labels) in line and "no sky coordinate columns" in line
    assert not out.exists()


def test_crossmatch_command_missing_named_column(tmp_path, sample, capsys):
    sample_path = _write(sample, tmp_path / "sample.parquet")
    labels = _write(_labels(sample, 0.5), tmp_path / "labels.fits")
    argv = ["galaxy", "crossmatch", str(sample_path), str(labels), "--out", str(tmp_path / "m.csv"),
            "--ra-column", "RA_deg", "--dec-column", "Dec_deg"]
    assert main(argv) == 1
    line = _one_error_line(capsys)
    assert str(sample_path) in line and "missing column 'RA_deg'" in line


def test_real_labels_positions_agree_with_their_jnames(bars_dir):
    # Real data: the file names are SDSS J-names of the catalogue positions,
    # truncated to 0.01 s and 0.1 arcsec, so every galaxy must match its own
    # name within ~0.15 arcsec.
    labels = pd.read_csv(bars_dir / "labels.csv")
    ra, dec = jname_positions(labels["file"], source="labels.csv")
    names = pd.DataFrame({"name_ra": ra, "name_dec": dec, "name_file": labels["file"]})
    out = crossmatch(labels, [("names", names)], 1.0, label_ra_column="name_ra", label_dec_column="name_dec")
    assert len(out) == len(labels)
    assert (out["name_file"] == out["file"]).all()
    assert out["names_sep_arcsec"].max() < 0.15


def test_jname_errors():
    ra, dec = jname_positions(["SDSS J123456.7-012345", "J000000.00+000000.0"])
    np.testing.assert_allclose(ra, [15 * (12 + 34 / 60 + 56.7 / 3600), 0.0])
    np.testing.assert_allclose(dec, [-(1 + 23 / 60 + 45 / 3600), 0.0])
    with pytest.raises(InputError, match=r"labels\.csv: 'NGC 1300' holds no J-name"):
        jname_positions(["NGC 1300"], source="labels.csv")
