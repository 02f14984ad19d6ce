"""The field of view as data: what checkpoints record, what cutouts record, and the check between them."""

import json
import logging
import tarfile

import pandas as pd
import pytest
import torch
from PIL import Image, PngImagePlugin

from deepscope.errors import InputError
from deepscope.galaxy.field import (
    PNG_KEY,
    SDSS_CUTOUT_FIELD,
    field_of_labels,
    model_field,
    parse_field,
    png_field,
    warn_on_field_mismatch,
)
from deepscope.registry import resolve_model

RADIUS_FIELD = {"kind": "radius", "scale": 5.0, "radius_column": "deVRad_r", "pixels": 64}


def _png(path, field=None):
    path.parent.mkdir(exist_ok=True)
    text = PngImagePlugin.PngInfo()
    if field is not None:
        text.add_text(PNG_KEY, json.dumps(field))
    Image.new("RGB", (8, 8)).save(path, format="PNG", pnginfo=text)
    return path


def test_shipped_models_record_the_field_of_the_shared_cutouts():
    for name in ("galaxy_bars", "galaxy_morphology"):
        assert torch.load(resolve_model(name, "galaxy"), weights_only=True)["meta"]["field"] == SDSS_CUTOUT_FIELD
        assert model_field(name) == SDSS_CUTOUT_FIELD


def test_field_specs_and_labels_tables():
    assert parse_field(" 12.5 ", 32) == {"kind": "fixed", "arcsec": 12.5, "pixels": 32}
    assert parse_field("4xpetroR50_r", 64)["radius_column"] == "petroR50_r"
    for bad in ("0", "big", "-2xdeVRad_r"):
        with pytest.raises(InputError, match=f"--field {bad}: give a side in arcsec"):
            parse_field(bad, 64)
    assert field_of_labels(pd.DataFrame({"file": ["a"]}), "labels.csv", 64) is None
    fixed = pd.DataFrame({"field_arcsec": [19.2, 19.2, float("nan")]})
    assert field_of_labels(fixed, "labels.csv", 64) == SDSS_CUTOUT_FIELD
    with pytest.raises(InputError, match=r"labels\.csv: field_arcsec varies from 12 to 30 arcsec; .*--field"):
        field_of_labels(pd.DataFrame({"field_arcsec": [12.0, 30.0]}), "labels.csv", 64)


def test_png_records_are_read_from_the_first_bytes_only(tmp_path):
    _png(tmp_path / "a.png", {**SDSS_CUTOUT_FIELD, "arcsec": 15.0})
    assert png_field((tmp_path / "a.png").read_bytes()[:200])["arcsec"] == 15.0
    _png(tmp_path / "plain.png")
    assert png_field((tmp_path / "plain.png").read_bytes()) is None
    assert png_field(b"\xff\xd8\xff not a png") is None


def test_cutouts_of_another_field_are_counted_in_one_warning(tmp_path, caplog):
    _png(tmp_path / "same.png", {**SDSS_CUTOUT_FIELD, "arcsec": 19.2})
    _png(tmp_path / "wide.png", {**RADIUS_FIELD, "arcsec": 30.0, "radius_arcsec": 6.0})
    small = _png(tmp_path / "more" / "small.png", {**RADIUS_FIELD, "arcsec": 12.5, "radius_arcsec": 2.5})
    _png(tmp_path / "unknown.png")
    (tmp_path / "plain.jpeg").write_bytes(b"not read")
    inputs = [tmp_path, small]  # a folder searched for PNGs, and a file named
    with caplog.at_level(logging.WARNING):
        assert warn_on_field_mismatch(inputs, None, "file", SDSS_CUTOUT_FIELD, "galaxy_bars") == 3
    [record] = caplog.records
    assert record.getMessage().startswith("3 of 4 cutouts have fields of 12.5-30 arcsec, but galaxy_bars was "
                                          "trained on fixed 19.2 arcsec fields")
    caplog.clear()
    # A model trained on radius-scaled fields wants 5 x each galaxy's radius: only the fixed cutout differs,
    # and it records no radius to compare with.
    assert warn_on_field_mismatch(inputs, None, "file", RADIUS_FIELD, "scaled") == 0
    assert warn_on_field_mismatch(inputs, None, "file", {**RADIUS_FIELD, "scale": 4.0}, "scaled") == 3
    assert warn_on_field_mismatch(inputs, None, "file", None, "old") == 0  # a model without a record: unchecked


def test_a_catalogue_field_column_is_read_instead_of_the_files(tmp_path, caplog):
    catalog = tmp_path / "cutouts.csv"
    pd.DataFrame({"file": ["a.png", "b.png", "c.png"], "field_arcsec": [19.2, 19.25, 24.0],
                  "deVRad_r": [3.84, 4.0, 4.8]}).to_csv(catalog, index=False)
    with caplog.at_level(logging.WARNING):
        assert warn_on_field_mismatch([], catalog, "file", SDSS_CUTOUT_FIELD, "galaxy_bars") == 1
    assert "1 of 3 cutouts have fields of 24 arcsec" in caplog.text
    assert warn_on_field_mismatch([], catalog, "file", RADIUS_FIELD, "scaled") == 1  # 19.25 is not 5 x 4.0
    # Without the column, the catalogue's PNGs are read.
    _png(tmp_path / "b.png", {**SDSS_CUTOUT_FIELD, "arcsec": 40.0})
    pd.DataFrame({"cutout": ["a.png", "b.png"]}).to_parquet(tmp_path / "c.parquet")
    assert warn_on_field_mismatch([], tmp_path / "c.parquet", "cutout", SDSS_CUTOUT_FIELD, "galaxy_bars") == 1


def test_a_png_in_a_tar_shard_is_read_from_its_member(tmp_path):
    png = _png(tmp_path / "a.png", {**SDSS_CUTOUT_FIELD, "arcsec": 40.0})
    with tarfile.open(tmp_path / "shard.tar", "w") as shard:
        shard.add(png, arcname="x/a.png")
    assert warn_on_field_mismatch([tmp_path / "shard.tar"], None, "file", SDSS_CUTOUT_FIELD, "galaxy_bars") == 1
