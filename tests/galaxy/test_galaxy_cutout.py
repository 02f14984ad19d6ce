"""galaxy cutout: frames with a real WCS -> colour cutouts scaled to each galaxy."""

import bz2
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from astropy.io import fits
from PIL import Image
from synthetic_galaxies import frame_wcs

from deepscope.cli.main import main
from deepscope.errors import FormatError, InputError
from deepscope.galaxy.crossmatch import jname_positions
from deepscope.galaxy.cutouts.frames import frame_band, index_frames, read_frame_header
from deepscope.galaxy.cutouts.make import CutoutSkipped, cutout_bands, sdss_jname
from deepscope.galaxy.synthetic import RED_GALAXY_COLOURS, SDSS_PIXEL_ARCSEC, render_discs, write_frame
from deepscope.registry import resolve_model

SCALE = SDSS_PIXEL_ARCSEC
RA0, DEC0 = 150.0, 2.0
SHAPE = (150, 200)  # frame rows, columns: 59" x 79"
FIELD_STEP = 55.0  # arcsec between field centres along a run: 4.4" overlap, as SDSS fields overlap
# Band brightness relative to r (a red galaxy) and band misregistration (arcsec in ra), as between SDSS bands.
COLOURS = RED_GALAXY_COLOURS
BAND_SHIFT = {"g": -7.0, "r": 0.0, "i": 6.0}


def _frame_wcs(ra, dec, shape=SHAPE, mirrored=False):
    return frame_wcs(ra, dec, shape, SCALE, mirrored)


def _render(wcs, shape, galaxies, band):
    """Noise-free exponential discs ``(ra, dec, r_eff arcsec, r flux)`` seen through a frame's WCS."""
    return render_discs(wcs, shape, galaxies, COLOURS[band])


def _offset(ra, dec, east_arcsec=0.0, north_arcsec=0.0):
    return ra + east_arcsec / 3600 / np.cos(np.radians(dec)), dec + north_arcsec / 3600


def _sky(tmp_path, galaxies, fields=None, bz2_bands=("r",)):
    """Write SDSS-like frames of a run: fields A, B (g, r, i) and C (g, r only), 55" apart in dec."""
    fields = fields or {"g": (0, 1, 2), "r": (0, 1, 2), "i": (0, 1)}
    frames = tmp_path / "frames"
    frames.mkdir(parents=True, exist_ok=True)
    for band, numbers in fields.items():
        for number in numbers:
            ra, dec = _offset(RA0, DEC0, BAND_SHIFT[band], number * FIELD_STEP)
            wcs = _frame_wcs(ra, dec)
            image = _render(wcs, SHAPE, galaxies, band)
            if band == "i":  # no SDSS name: the band comes from FILTER alone
                path, card = frames / f"field{number}-{band}.fits", band
            else:
                suffix = ".fits.bz2" if band in bz2_bands else ".fits"
                path, card = frames / f"frame-{band}-000756-3-{44 + number:04d}{suffix}", None
            write_frame(path, image, wcs, card)
    return frames


def _moment_radius(image):
    """Flux-weighted rms distance from the image centre, pixels."""
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    weight = np.clip(image, 0, None)
    centre = (np.array(image.shape) - 1) / 2
    return float(np.sqrt((weight * ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2)).sum() / weight.sum()))


# --- names and bands -------------------------------------------------------------


def test_jnames_reproduce_the_shared_cutout_names(bars_dir):
    labels = pd.read_csv(bars_dir / "labels.csv")
    stems = labels["file"].str.rsplit("/", n=1).str[-1].str.removesuffix(".jpeg")
    names = np.array([sdss_jname(ra, dec) for ra, dec in zip(labels["ra"], labels["dec"], strict=True)])
    differ = names != stems.to_numpy()
    # The shared names round each field on its own, so a few read "60.0" seconds where ours carry.
    assert differ.mean() < 0.001
    assert all("60.0" in stem for stem in stems[differ])
    ra, dec = jname_positions(names)
    assert np.abs(ra - labels["ra"]).max() * 3600 < 0.08 and np.abs(dec - labels["dec"]).max() * 3600 < 0.06


def test_frame_band_from_filter_or_sdss_name():
    assert frame_band("frame-g-000756-3-0044.fits.bz2", fits.Header()) == "g"
    assert frame_band("x.fits", fits.Header({"FILTER": "SDSS_i"})) == "i"
    with pytest.raises(FormatError, match=r"x\.fits: FILTER 'Halpha' is not an SDSS band"):
        frame_band("x.fits", fits.Header({"FILTER": "Halpha"}))
    with pytest.raises(FormatError, match=r"the name says band g but the FILTER card says r"):
        frame_band("frame-g-000756-3-0044.fits", fits.Header({"FILTER": "r"}))
    with pytest.raises(FormatError, match=r"y\.fits: no band: no FILTER card"):
        frame_band("y.fits", fits.Header())


def test_frames_are_indexed_by_band_including_bz2(tmp_path):
    frames = index_frames([_sky(tmp_path, [])])
    assert {band: len(v) for band, v in frames.items()} == {"g": 3, "r": 3, "i": 2}
    assert all(f.path.name.endswith(".fits.bz2") for f in frames["r"])
    assert frames["r"][0].pixel_scale == pytest.approx(SCALE)


# --- cutting -----------------------------------------------------------------------


def _index(frames_dir):
    return index_frames([frames_dir])


def test_galaxy_across_two_frames_matches_one_frame_holding_it(tmp_path):
    north_edge_of_a = SHAPE[0] / 2 * SCALE  # 29.7": the galaxy sits on the A/B seam
    galaxy = (*_offset(RA0, DEC0, 3.0, north_edge_of_a - 1.0), 3.0, 5000.0)
    split = _index(_sky(tmp_path / "split", [galaxy]))
    # The same sky seen by one large frame per band.
    whole_dir = tmp_path / "whole"
    whole_dir.mkdir()
    for band in "gri":
        wcs = _frame_wcs(*_offset(RA0, DEC0, BAND_SHIFT[band], FIELD_STEP / 2), shape=(400, 200))
        write_frame(whole_dir / f"{band}.fits", _render(wcs, (400, 200), [galaxy], band), wcs, band)
    whole = _index(whole_dir)
    a_only = {band: [f for f in split[band] if f.path.name.startswith(("frame-g-000756-3-0044", "frame-r-000756-3-0044",
                                                                        "field0"))] for band in "gri"}
    bands, off = cutout_bands(split, galaxy[0], galaxy[1], 20.0, 64)
    reference, reference_off = cutout_bands(whole, galaxy[0], galaxy[1], 20.0, 64)
    assert off == 0 and reference_off == 0
    # The frames sample the sky on other pixel grids, which shows only at the disc's cusp.
    np.testing.assert_allclose(bands, reference, atol=0.02 * reference.max())
    assert np.abs(bands - reference).mean() < 1e-3 * reference.max()
    # Frame A alone leaves half the field empty: what mosaicking fixes.
    _, off_a = cutout_bands(a_only, galaxy[0], galaxy[1], 20.0, 64)
    assert 0.3 < off_a < 0.7


def test_cutouts_scale_with_the_radius(tmp_path):
    galaxy = (RA0, DEC0, 2.5, 5000.0)
    frames = _index(_sky(tmp_path, [galaxy]))
    small, _ = cutout_bands(frames, RA0, DEC0, 5 * 2.5, 64)
    large, _ = cutout_bands(frames, RA0, DEC0, 5 * 5.0, 64)
    # The central half of the doubled field is the same sky as the first cutout, at half the resolution.
    shrunk = small.reshape(3, 32, 2, 32, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(large[:, 16:48, 16:48], shrunk, atol=0.03 * shrunk.max())
    assert _moment_radius(small[1]) > 1.5 * _moment_radius(large[1])


def test_galaxies_of_two_sizes_look_alike_when_scaled_to_their_radius(tmp_path):
    small = (*_offset(RA0, DEC0, -15.0, 0.0), 2.0, 3000.0)
    large = (*_offset(RA0, DEC0, 15.0, 0.0), 4.0, 3000.0)
    frames = _index(_sky(tmp_path, [small, large]))
    image_small, _ = cutout_bands(frames, small[0], small[1], 5 * 2.0, 64)
    image_large, _ = cutout_bands(frames, large[0], large[1], 5 * 4.0, 64)
    assert _moment_radius(image_small[1]) == pytest.approx(_moment_radius(image_large[1]), rel=0.1)


def test_cutouts_are_north_up_east_left_from_mirrored_frames(tmp_path):
    centre = (RA0, DEC0, 2.0, 3000.0)
    north = (*_offset(RA0, DEC0, 0.0, 6.0), 0.8, 2000.0)
    east = (*_offset(RA0, DEC0, 6.0, 0.0), 0.8, 1000.0)
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for band in "gri":
        wcs = _frame_wcs(*_offset(RA0, DEC0, BAND_SHIFT[band], 0.0), mirrored=True)
        write_frame(frames_dir / f"{band}.fits", _render(wcs, SHAPE, [centre, north, east], band), wcs, band)
    bands, _ = cutout_bands(_index(frames_dir), RA0, DEC0, 19.2, 64)
    r = bands[1]
    row, col = np.unravel_index(np.argmax(np.where(np.abs(np.arange(64) - 31.5) < 4, r, 0)), r.shape)
    assert row < 20  # north companion in the top rows
    row, col = np.unravel_index(np.argmax(np.where(np.abs(np.arange(64)[:, None] - 31.5) < 4, r, 0)), r.shape)
    assert col < 20  # east companion on the left


def test_a_band_missing_or_off_every_frame_is_said(tmp_path):
    frames = _index(_sky(tmp_path, []))
    with pytest.raises(CutoutSkipped, match="off every frame"):
        cutout_bands(frames, 10.0, -30.0, 20.0, 64)
    field_c = _offset(RA0, DEC0, 0.0, 2 * FIELD_STEP)
    with pytest.raises(CutoutSkipped, match="no i-band frame holds it"):
        cutout_bands(frames, *field_c, 20.0, 64)


# --- the command -------------------------------------------------------------------


def _catalog(tmp_path, rows):
    path = tmp_path / "catalog.csv"
    pd.DataFrame(rows, columns=["objID", "ra", "dec", "deVRad_r", "petroMag_r"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """Frames of three fields and a catalogue with good rows and every kind of bad one."""
    tmp_path = tmp_path_factory.mktemp("survey")
    seam = SHAPE[0] / 2 * SCALE
    good = [(1, *_offset(RA0, DEC0, -10.0, 0.0), 3.0, 15.1), (2, *_offset(RA0, DEC0, 5.0, seam - 1.0), 2.5, 16.0),
            (3, *_offset(RA0, DEC0, 12.0, 5.0), 6.0, 14.5)]
    galaxies = [(ra, dec, radius, 4000.0) for _, ra, dec, radius, _ in good]
    frames = _sky(tmp_path, galaxies)
    bad = [(4, 10.0, -30.0, 3.0, 15.0),  # off every frame
           (5, *_offset(RA0, DEC0, 0.0, 2 * FIELD_STEP), 3.0, 15.0),  # field C: g and r only
           (6, RA0, DEC0, -3.0, 15.0)]  # SDSS-style missing radius
    return frames, _catalog(tmp_path, good + bad)


def test_cutout_command_writes_good_rows_and_lists_bad_ones(tmp_path, survey, capsys):
    frames, catalog = survey
    out = tmp_path / "cutouts"
    assert main(["galaxy", "cutout", str(catalog), "--frames", str(frames), "--out", str(out), "-q",
                 "--size-factor", "5"]) == 1
    err = capsys.readouterr().err
    table = pd.read_csv(out / "cutouts.csv", keep_default_na=False)
    assert list(table.columns) == ["objID", "ra", "dec", "deVRad_r", "petroMag_r", "file", "status", "field_arcsec"]
    assert table["status"].tolist()[:3] == ["ok"] * 3
    assert table["status"].tolist()[3:] == ["off every frame", "no i-band frame holds it",
                                            "radius -3 arcsec in deVRad_r is not positive"]
    assert pd.to_numeric(table["field_arcsec"][:3]).tolist() == [15.0, 12.5, 30.0]
    written = sorted(p.name for p in out.glob("*.png"))
    assert written == sorted(table["file"][:3]) and table["file"][3:].tolist() == ["", "", ""]
    assert table["file"][0] == sdss_jname(table["ra"][0], table["dec"][0]) + ".png"
    for name in written:
        with Image.open(out / name) as image:
            assert image.size == (64, 64) and image.mode == "RGB"
            rgb = np.asarray(image)
            field = json.loads(image.info["deepscope:field"])
        row = table[table["file"] == name].iloc[0]
        assert field == {"kind": "radius", "scale": 5.0, "radius_column": "deVRad_r", "pixels": 64,
                         "arcsec": float(row["field_arcsec"]), "radius_arcsec": float(row["deVRad_r"])}
        centre = rgb[28:36, 28:36].astype(float).mean(axis=(0, 1))
        assert centre.sum() > 3 * rgb[:6, :6].astype(float).mean(axis=(0, 1)).sum()  # a galaxy in the middle
        assert centre[0] > centre[2]  # red in i more than blue in g, as rendered
    assert "3 input(s) failed" in err and "off every frame" in err and "no i-band frame" in err
    assert not list(out.glob(".*.tmp"))


def test_predict_runs_on_the_cutouts_of_its_own_field(tmp_path, survey, caplog):
    frames, catalog = survey
    out = tmp_path / "cutouts"
    # By default the field of the default model: a fixed 19.2", which needs no radius.
    assert main(["galaxy", "cutout", str(catalog), "--frames", str(frames), "--out", str(out), "-q",
                 "--name-column", "objID"]) == 1
    table = pd.read_csv(out / "cutouts.csv", keep_default_na=False)
    # Only the rows off the frames fail.
    assert table["file"].tolist() == ["1.png", "2.png", "3.png", "", "", "6.png"]
    assert (table["field_arcsec"] == 19.2).all()
    # Rows without a cutout are dropped before predicting; the rest keep their catalogue columns.
    good = out / "good.csv"
    table[table["status"] == "ok"].to_csv(good, index=False)
    pred = tmp_path / "pred.csv"
    assert main(["galaxy", "predict", "--catalog", str(good), "--out", str(pred), "-q"]) == 0
    assert "trained on" not in caplog.text  # the same field: no warning
    predictions = pd.read_csv(pred)
    assert len(predictions) == 4
    assert (predictions["barred"] == (predictions["p_bar"] >= predictions["threshold"]).astype(int)).all()
    kept = ["catalog_file" if c == "file" else c for c in table.columns]
    assert list(predictions.columns) == ["file", "p_bar", "barred", "threshold", "scale_flag", "bar_length_arcsec",
                                         "bar_pa_deg", *kept]
    assert predictions["objID"].tolist() == [1, 2, 3, 6]
    assert predictions["file"].tolist() == [str(out / f) for f in predictions["catalog_file"]]
    assert (predictions["status"] == "ok").all()


def test_predict_warns_once_about_cutouts_of_another_field(tmp_path, survey, caplog):
    frames, catalog = survey
    out = tmp_path / "scaled"
    assert main(["galaxy", "cutout", str(catalog), "--frames", str(frames), "--out", str(out), "-q",
                 "--size-factor", "5"]) == 1
    expected = "3 of 3 cutouts have fields of 12.5-30 arcsec, but galaxy_bars was trained on fixed 19.2 arcsec fields"
    # From the PNGs' own records ...
    assert main(["galaxy", "predict", str(out), "--out", str(tmp_path / "a.csv"), "-q"]) == 0
    assert [r.getMessage() for r in caplog.records if "trained on" in r.getMessage()][0].startswith(expected)
    caplog.clear()
    # ... or from the catalogue's field_arcsec, where one is given.
    good = tmp_path / "good.csv"
    pd.read_csv(out / "cutouts.csv").query("status == 'ok'").assign(file=lambda t: str(out) + "/" + t.file).to_csv(
        good, index=False)
    assert main(["galaxy", "predict", "--catalog", str(good), "--out", str(tmp_path / "b.csv"), "-q"]) == 0
    assert sum(expected in r.getMessage() for r in caplog.records) == 1


def test_cutout_defaults_to_the_field_its_model_was_trained_on(tmp_path, survey):
    frames, catalog = survey
    record = torch.load(resolve_model("galaxy_bars", "galaxy"), weights_only=True)
    for name, field in (("fixed", {"kind": "fixed", "arcsec": 12.0, "pixels": 32}),
                        ("scaled", {"kind": "radius", "scale": 3.0, "radius_column": "deVRad_r", "pixels": 48})):
        model = tmp_path / f"{name}.pt"
        torch.save({**record, "meta": {**record["meta"], "field": field}}, model)
        out = tmp_path / name
        assert main(["galaxy", "cutout", str(catalog), "--frames", str(frames), "--out", str(out), "-q",
                     "--model", str(model)]) == 1
        table = pd.read_csv(out / "cutouts.csv").query("status == 'ok'")
        expected = [12.0] * 4 if name == "fixed" else [9.0, 7.5, 18.0]  # a fixed field needs no radius
        assert table["field_arcsec"].tolist() == expected
        with Image.open(out / table["file"].iloc[0]) as image:
            assert image.size == (field["pixels"],) * 2
            assert json.loads(image.info["deepscope:field"])["kind"] == field["kind"]


def test_cutout_field_scales_with_size_factor_and_pixels(tmp_path, survey):
    frames, catalog = survey
    out = tmp_path / "big"
    assert main(["galaxy", "cutout", str(catalog), "--frames", str(frames), "--out", str(out), "-q",
                 "--size-factor", "8", "--pixels", "96"]) == 1
    table = pd.read_csv(out / "cutouts.csv")
    assert table["field_arcsec"][:3].tolist() == [24.0, 20.0, 48.0]
    with Image.open(out / table["file"][0]) as image:
        assert image.size == (96, 96)


def _one_error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("deepscope: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(("breakage", "message"), [
    ("no_wcs", r"g\.fits: no celestial WCS in the header"),
    ("wrong_band", r"g\.fits: FILTER 'Ha' is not an SDSS band"),
    ("no_radec", r"catalog\.csv: no sky coordinate columns .* with --ra-column and --dec-column"),
    ("no_radius", r"catalog\.csv: missing column 'deVRad_r'; name the right one with --radius-column.*--fixed-arcsec"),
    ("no_i", r"no i-band frame in .*found 1 g, 1 r"),
])
def test_bad_input_stops_before_anything_is_written(tmp_path, capsys, breakage, message):
    frames = tmp_path / "frames"
    frames.mkdir()
    for band in "gri" if breakage != "no_i" else "gr":
        wcs = _frame_wcs(RA0, DEC0)
        header = {"FILTER": "Ha"} if breakage == "wrong_band" and band == "g" else {}
        path = write_frame(frames / f"{band}.fits", np.zeros(SHAPE), wcs, band, header)
        if breakage == "no_wcs" and band == "g":
            fits.PrimaryHDU(np.zeros(SHAPE, np.float32), fits.Header({"FILTER": "g"})).writeto(path, overwrite=True)
    rows = pd.DataFrame({"objID": [1], "ra": [RA0], "dec": [DEC0], "deVRad_r": [3.0]})
    if breakage == "no_radec":
        rows = rows.rename(columns={"ra": "alpha", "dec": "delta"})
    if breakage == "no_radius":
        rows = rows.drop(columns="deVRad_r")
    rows.to_csv(tmp_path / "catalog.csv", index=False)
    out = tmp_path / "out"
    assert main(["galaxy", "cutout", str(tmp_path / "catalog.csv"), "--frames", str(frames), "--out", str(out),
                 "--size-factor", "5"]) == 1
    assert re.search(message, _one_error_line(capsys))
    assert not out.exists()


def test_radius_from_a_photoobj_array_column(tmp_path, survey):
    frames, catalog = survey
    table = pd.read_csv(catalog)
    table["DEVRAD"] = [[r * 1.2, r * 1.1, r, r * 0.9, r * 0.8] for r in table["deVRad_r"]]
    photo = tmp_path / "photo.parquet"
    table.drop(columns="deVRad_r").to_parquet(photo)
    out = tmp_path / "out"
    assert main(["galaxy", "cutout", str(photo), "--frames", str(frames), "--out", str(out), "-q",
                 "--radius-column", "deVRad"]) == 1
    assert pd.read_csv(out / "cutouts.csv")["field_arcsec"][:3].tolist() == [15.0, 12.5, 30.0]


def test_unreadable_frame_fails_its_rows_only(tmp_path, survey):
    frames, catalog = survey
    broken = tmp_path / "frames"
    broken.mkdir()
    for path in frames.iterdir():
        data = path.read_bytes()
        # Field A's r frame keeps a good header but loses its pixels.
        if path.name == "frame-r-000756-3-0044.fits.bz2":
            data = bz2.compress(bz2.decompress(data)[:5760])
        (broken / path.name).write_bytes(data)
    out = tmp_path / "out"
    assert main(["galaxy", "cutout", str(catalog), "--frames", str(broken), "--out", str(out), "-q"]) == 1
    table = pd.read_csv(out / "cutouts.csv", keep_default_na=False)
    assert "frame-r-000756-3-0044.fits.bz2: FITS file is truncated" in table["status"][0]
    assert (out / table["file"][2]).is_file() or table["status"][2] != "ok"


def test_read_frame_header_refuses_a_table(tmp_path):
    path = tmp_path / "frame-g-000756-3-0044.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]).writeto(path)
    with pytest.raises(FormatError, match="no 2-D image"):
        read_frame_header(path)
    with pytest.raises(InputError, match="no such file"):
        index_frames([tmp_path / "absent"])


def test_command_defaults_are_the_library_defaults():
    from deepscope.cli import galaxy_cutout
    from deepscope.galaxy.cutouts import make as cutout

    written_out = (galaxy_cutout.DEFAULT_SIZE_FACTOR, galaxy_cutout.DEFAULT_RADIUS_COLUMN)
    assert written_out == (cutout.DEFAULT_SIZE_FACTOR, cutout.DEFAULT_RADIUS_COLUMN)


def test_names_are_plain_distinct_file_names(tmp_path, survey):
    frames, catalog = survey
    table = pd.read_csv(catalog).iloc[:3].assign(label=["NGC 1/2", "NGC 1/2", None])
    table.loc[2, "ra"] = np.nan
    table.to_csv(tmp_path / "named.csv", index=False)
    out = tmp_path / "out"
    assert main(["galaxy", "cutout", str(tmp_path / "named.csv"), "--frames", str(frames), "--out", str(out), "-q",
                 "--name-column", "label"]) == 1
    result = pd.read_csv(out / "cutouts.csv", keep_default_na=False)
    assert result["file"].tolist() == ["NGC_1_2.png", "NGC_1_2_2.png", ""]
    assert result["status"][2].startswith("no valid position (ra nan")
    assert sorted(p.name for p in out.glob("*.png")) == ["NGC_1_2.png", "NGC_1_2_2.png"]


def test_a_field_partly_off_the_frames_is_written_and_flagged(tmp_path, survey):
    frames, _ = survey
    # 30" east: on every band's frames, but the g frames (7" west of r) end 2.6" further east.
    ra, dec = _offset(RA0, DEC0, 30.0, 0.0)
    catalog = _catalog(tmp_path, [(1, ra, dec, 3.0, 15.0)])
    out = tmp_path / "out"
    assert main(["galaxy", "cutout", str(catalog), "--frames", str(frames), "--out", str(out), "-q",
                 "--size-factor", "5"]) == 0
    table = pd.read_csv(out / "cutouts.csv")
    assert table["status"][0] == "edge: 33% of the field is off the frames (filled with sky)"
    assert (out / table["file"][0]).is_file()


def test_a_bz2_frame_with_its_image_in_an_extension(tmp_path):
    buffer = io.BytesIO()
    header = _frame_wcs(RA0, DEC0).to_header()
    header["FILTER"] = "i"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones(SHAPE, np.float32), header)]).writeto(buffer)
    path = tmp_path / "field.fits.bz2"
    path.write_bytes(bz2.compress(buffer.getvalue()))
    frame = read_frame_header(path)
    assert (frame.band, frame.shape) == ("i", SHAPE)


@pytest.mark.parametrize(("argv", "message"), [
    (["--size-factor", "-2"], "--size-factor must be a positive number, got -2.0"),
    (["--fixed-arcsec", "0"], "--fixed-arcsec must be a positive number of arcsec, got 0.0"),
    (["--pixels", "4"], "--pixels must be at least 8, got 4"),
])
def test_bad_options_are_refused_before_reading(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["galaxy", "cutout", str(tmp_path / "absent.csv"), "--frames", str(tmp_path), "--out", str(out),
                 *argv]) == 1
    assert message in _one_error_line(capsys)
    assert not out.exists()


def test_a_catalogue_that_already_has_the_added_columns_is_refused(tmp_path, survey, capsys):
    frames, catalog = survey
    previous = tmp_path / "previous.csv"
    pd.read_csv(catalog).assign(file="x.png").to_csv(previous, index=False)
    assert main(["galaxy", "cutout", str(previous), "--frames", str(frames), "--out", str(tmp_path / "out")]) == 1
    assert "previous.csv: already has column(s) file, which cutouts.csv adds; rename them" in _one_error_line(capsys)


def test_frames_on_different_sky_pedestals_mosaic_without_a_seam(tmp_path):
    seam = SHAPE[0] / 2 * SCALE
    galaxy = (*_offset(RA0, DEC0, 3.0, seam - 1.0), 3.0, 5000.0)
    flat = _index(_sky(tmp_path / "flat", [galaxy]))
    raised_dir = _sky(tmp_path / "raised", [galaxy], bz2_bands=())
    for number, path in enumerate(sorted(raised_dir.iterdir())):
        with fits.open(path) as hdul:
            data, header = hdul[0].data + 10.0 * (1 + number % 3), hdul[0].header
        fits.PrimaryHDU(data, header).writeto(path, overwrite=True)
    bands, _ = cutout_bands(flat, galaxy[0], galaxy[1], 20.0, 64)
    raised, _ = cutout_bands(_index(raised_dir), galaxy[0], galaxy[1], 20.0, 64)
    np.testing.assert_allclose(raised, bands, atol=1e-3 * bands.max())
