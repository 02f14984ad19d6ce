"""The field of view of galaxy cutouts: the convention a model was trained on, and the check against it.

A network learns what a galaxy looks like at the scale it was shown, so the
field a cutout spans is part of a model. Checkpoints record it in
``meta["field"]``, one of::

    {"kind": "fixed", "arcsec": 19.2, "pixels": 64}          # every cutout 19.2" wide
    {"kind": "radius", "scale": 5.0, "radius_column": "deVRad_r", "pixels": 64}   # 5 x the radius

``galaxy cutout`` writes each cutout's field into ``cutouts.csv``
(``field_arcsec``) and into its PNG (a ``deepscope:field`` text chunk: the
convention, the cutout's ``arcsec`` and, when radius-scaled, its
``radius_arcsec``); ``galaxy predict`` warns when they differ from the
model's field (:func:`warn_on_field_mismatch`).
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepscope.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# The shared SDSS cutouts (../shared/data/galaxy): 64 px at 0.3"/px, what the shipped models learnt from.
SDSS_CUTOUT_FIELD = {"kind": "fixed", "arcsec": 19.2, "pixels": 64}
PNG_KEY = "deepscope:field"
# Fields within this relative difference are the same (a cutout's side is rounded to whole pixels).
TOLERANCE = 0.01
# The first bytes of a PNG hold its text chunks (written before the pixels).
_PNG_HEAD_BYTES = 4096
_RADIUS_SPEC = re.compile(r"^\s*(?P<scale>[0-9.]+)\s*x\s*(?P<column>\S+)\s*$")


def parse_field(spec: str, pixels: int) -> dict:
    """A field convention from its command-line spelling: ``19.2`` (arcsec) or ``5xdeVRad_r`` (K x a radius column).

    Raises
    ------
    InputError
        If ``spec`` is neither, or not positive.

    Examples
    --------
    >>> parse_field("19.2", 64)
    {'kind': 'fixed', 'arcsec': 19.2, 'pixels': 64}
    >>> parse_field("5xdeVRad_r", 64)
    {'kind': 'radius', 'scale': 5.0, 'radius_column': 'deVRad_r', 'pixels': 64}
    """
    radius = _RADIUS_SPEC.match(spec)
    try:
        value = float(radius["scale"] if radius else spec)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        msg = f"--field {spec}: give a side in arcsec (19.2) or a multiple of a radius column (5xdeVRad_r)"
        raise InputError(msg)
    if radius:
        return {"kind": "radius", "scale": value, "radius_column": radius["column"], "pixels": int(pixels)}
    return {"kind": "fixed", "arcsec": value, "pixels": int(pixels)}


def field_of_labels(table: pd.DataFrame, source: str, pixels: int) -> dict | None:
    """The fixed field of a labels table's ``field_arcsec`` column; None without one.

    Raises
    ------
    InputError
        If the fields differ between rows (radius-scaled cutouts: name the convention with ``--field``).
    """
    values = table["field_arcsec"].to_numpy(float) if "field_arcsec" in table.columns else np.array([])
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    if values.max() > values.min() * (1 + TOLERANCE):
        msg = (f"{source}: field_arcsec varies from {values.min():g} to {values.max():g} arcsec; "
               "name the convention with --field (e.g. --field 5xdeVRad_r)")
        raise InputError(msg)
    return {"kind": "fixed", "arcsec": round(float(np.median(values)), 4), "pixels": int(pixels)}


def model_field(model: str | Path | None = None) -> dict:
    """The field a galaxy model (shipped name, run directory or checkpoint) records; the shared cutouts' without one.

    Raises
    ------
    ModelError
        If nothing is found at ``model``.
    """
    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.registry import resolve_model

    field = load_checkpoint(resolve_model(model, "galaxy")).get("meta", {}).get("field")
    if field is None:
        log.info("%s records no field; cutting %s", model or "the default model", describe_field(SDSS_CUTOUT_FIELD))
    return field or SDSS_CUTOUT_FIELD


def describe_field(field: dict) -> str:
    """The field in words.

    Examples
    --------
    >>> describe_field(SDSS_CUTOUT_FIELD)
    'fixed 19.2 arcsec fields'
    >>> describe_field({"kind": "radius", "scale": 5.0, "radius_column": "deVRad_r", "pixels": 64})
    'fields of 5 x deVRad_r'
    """
    if field["kind"] == "fixed":
        return f"fixed {field['arcsec']:g} arcsec fields"
    return f"fields of {field['scale']:g} x {field['radius_column']}"


def expected_arcsec(field: dict, radius_arcsec: float | None = None) -> float | None:
    """The side a cutout should have for a model's field; None when it depends on an unknown radius.

    Examples
    --------
    >>> expected_arcsec(SDSS_CUTOUT_FIELD), expected_arcsec({"kind": "radius", "scale": 5.0}, 4.0)
    (19.2, 20.0)
    """
    if field["kind"] == "fixed":
        return float(field["arcsec"])
    return None if radius_arcsec is None else field["scale"] * radius_arcsec


def png_field(data: bytes) -> dict | None:
    """The field a ``galaxy cutout`` PNG records, from the file's first bytes; None for any other file."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)) as image:
            text = image.info.get(PNG_KEY)
        return None if text is None else json.loads(text)
    except Exception:  # noqa: BLE001 - no readable record is an unknown field; predict reports bad files itself
        return None


def _read_columns(catalog: Path, columns: list[str]) -> pd.DataFrame:
    """Some columns of a catalogue, without reading the others (a survey catalogue may be large)."""
    import pandas as pd

    from deepscope.core.files import read_table

    name = catalog.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(catalog, columns=columns)
    if name.endswith(".csv"):
        return pd.read_csv(catalog, usecols=columns, keep_default_na=False, na_values=[""])
    return read_table(catalog)[columns]


def _png_fields(refs: Iterable, radius_column: str | None):
    """``(arcsec, radius_arcsec or None)`` recorded in the PNGs among the inputs."""
    for ref in refs:
        if not ref.name.lower().endswith(".png"):
            continue
        try:
            with open(ref.path, "rb") as handle:
                handle.seek(max(ref.offset, 0))
                record = png_field(handle.read(_PNG_HEAD_BYTES if ref.offset < 0 else min(ref.size, _PNG_HEAD_BYTES)))
        except OSError:
            continue  # predict reports the file itself
        if record is not None:
            same = record.get("radius_column") == radius_column
            yield record.get("arcsec"), record.get("radius_arcsec") if same else None


def _recorded_fields(inputs, catalog, path_column, radius_column):
    """``(arcsec, radius_arcsec or None)`` of every cutout whose field is recorded."""
    from deepscope.core.batch.sources import InputStream

    try:
        pngs = InputStream(inputs, (".png",)) if inputs else []
    except InputError:  # no PNG among them
        pngs = []
    yield from _png_fields(pngs, radius_column)
    if catalog is None:
        return
    columns = InputStream(catalog=catalog, path_column=path_column, keep_columns=True).columns
    if "field_arcsec" in columns:
        table = _read_columns(Path(catalog), ["field_arcsec", *([radius_column] if radius_column in columns else [])])
        radius = table[radius_column] if radius_column in table.columns else [None] * len(table)
        yield from zip(table["field_arcsec"].to_numpy(float), radius)
    elif _read_columns(Path(catalog), [path_column])[path_column].astype(str).str.lower().str.endswith(".png").any():
        yield from _png_fields(InputStream(catalog=catalog, path_column=path_column), radius_column)


def warn_on_field_mismatch(inputs, catalog: str | Path | None, path_column: str, model_field: dict | None,
                           model_name: str) -> int:
    """Log one warning when cutouts' recorded fields differ from the model's; return how many differ.

    Fields come from the ``deepscope:field`` text chunk of PNG inputs (files,
    directories, tar shards), and from the catalogue's ``field_arcsec``
    column, else its PNGs' chunks. Cutouts without a record (plain SDSS
    JPEGs), and a model without one, are not checked.

    Parameters
    ----------
    inputs : sequence of str or Path
        Files, directories and tar shards, as ``galaxy predict`` takes them.
    catalog : str or Path, optional
        The ``--catalog`` table, whose ``path_column`` lists cutouts.
    path_column : str
    model_field : dict, optional
        The model's ``meta["field"]``.
    model_name : str
        For the message.
    """
    if model_field is None:
        return 0
    checked, sides = 0, []
    for arcsec, radius in _recorded_fields(inputs, catalog, path_column, model_field.get("radius_column")):
        expected = expected_arcsec(model_field, None if radius is None or not np.isfinite(radius) else radius)
        if arcsec is None or expected is None or not np.isfinite(arcsec):
            continue
        checked += 1
        if abs(arcsec - expected) > TOLERANCE * expected:
            sides.append(arcsec)
    if sides:
        span = f"{min(sides):.3g}" if min(sides) == max(sides) else f"{min(sides):.3g}-{max(sides):.3g}"
        log.warning("%d of %d cutouts have fields of %s arcsec, but %s was trained on %s: their predictions "
                    "may be off (cut them with 'galaxy cutout --model %s')", len(sides), checked, span,
                    model_name, describe_field(model_field), model_name)
    return len(sides)
