"""Property-based fuzzing of every file reader.

Each reader gets (a) random bytes under each suffix it supports and (b)
small valid files with bytes flipped, deleted, inserted, overwritten by
long digit runs (gigantic header values) or cut short. The property: the
reader returns, or raises a :class:`~deepscope.errors.DeepscopeError`; any
other exception, or a read taking more than ``TIME_LIMIT_S``, is a bug.
Derandomized, so CI runs the same examples every time.
"""

import gzip
import io
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepscope.errors import DeepscopeError

TIME_LIMIT_S = 10
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
RANDOM = settings(max_examples=12, **SETTINGS)
MUTATED = settings(max_examples=60, **SETTINGS)


class _Hang(Exception):
    """A reader ran past TIME_LIMIT_S."""


def _on_alarm(signum, frame):
    raise _Hang(f"reader took more than {TIME_LIMIT_S} s")


def _check(reader, data, name):
    """Write ``data`` as ``name`` and read it: a result or a one-line DeepscopeError naming the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(TIME_LIMIT_S)
        try:
            # Users run with the default warning filters: a warning is noise,
            # not a failure (pytest here turns warnings into errors).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reader(path)
        except DeepscopeError as exc:
            # one line that names the file
            assert name in str(exc), str(exc)
            assert "\n" not in str(exc).strip(), str(exc)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


@st.composite
def _mutations(draw, seed, header=2880):
    """``seed`` with 1-4 random edits; half the edits land in the first ``header`` bytes."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        limit = min(len(data), header) if draw(st.booleans()) else len(data)
        pos = draw(st.integers(0, max(limit - 1, 0)))
        op = draw(st.sampled_from(["flip", "overwrite", "digits", "insert", "delete", "truncate"]))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            data[pos:pos + 4] = draw(st.binary(min_size=4, max_size=4))
        elif op == "digits":
            # a gigantic (or negative) number where a size may be written
            data[pos:pos + 12] = draw(st.sampled_from([b"999999999999", b"-99999999999", b"000000000000"]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        else:
            del data[pos:]
    return bytes(data)


# --- small valid files, written in memory ---------------------------------

def _image(kind, array):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=kind)
    return buffer.getvalue()


def _fits(*hdus):
    from astropy.io import fits

    buffer = io.BytesIO()
    fits.HDUList(list(hdus)).writeto(buffer)
    return buffer.getvalue()


def _galaxy_seeds():
    from astropy.io import fits

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    cube = _fits(fits.PrimaryHDU(rng.normal(size=(3, 8, 8)).astype(np.float32)))
    return {
        "g.jpg": _image("JPEG", rgb),
        "g.png": _image("PNG", rgb),
        "g.fits": cube,
        "b.fits": _fits(fits.PrimaryHDU(rng.normal(size=(8, 8)).astype(np.float32))),
        "g.fits.gz": gzip.compress(cube, mtime=0),
    }


def _spectra_seeds():
    from astropy.io import fits

    image = fits.PrimaryHDU(np.linspace(1.0, 2.0, 64).astype(np.float32))
    image.header["CRVAL1"] = 4000.0
    image.header["CDELT1"] = 2.0
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="WAVELENGTH", format="E", array=np.linspace(4000, 5000, 32)),
        fits.Column(name="FLUX", format="E", array=np.linspace(1, 2, 32)),
        fits.Column(name="ERR", format="E", array=np.full(32, 0.1)),
    ])
    text = "".join(f"{4000 + 2 * i} {1 + i / 100}\n" for i in range(32)).encode()
    return {
        "s.fits": _fits(image),
        "t.fits": _fits(fits.PrimaryHDU(), table),
        "s.txt": text,
        "s.rbn.gz": gzip.compress(text, mtime=0),
    }


def _micrograph_seeds():
    import mrcfile

    from deepscope.cryoem.io import REGION_COLOURS

    rng = np.random.default_rng(1)
    image = rng.normal(size=(16, 16)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(image)
        mrc_bytes = path.read_bytes()
    labels = np.array(REGION_COLOURS, np.uint8)[rng.integers(0, 4, (16, 16))]
    grey = (rng.random((16, 16)) * 255).astype(np.uint8)
    return {
        "m.mrc": mrc_bytes,
        "m.tif": _image("TIFF", image),
        "m.jpg": _image("JPEG", grey),
        "m.png": _image("PNG", grey),
        "labels.png": _image("PNG", labels),
    }


def _coordinate_seeds():
    import pandas as pd

    from deepscope.cryoem.io import write_coordinates

    table = pd.DataFrame({"x": [10.0, 50.5, 90.0], "y": [20.0, 60.0, 100.0], "score": [0.9, 0.5, 0.7]})
    seeds = {}
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".star", ".box", ".csv", ".cs"):
            path = Path(folder) / f"c{suffix}"
            write_coordinates(table, path, box_size=64, shape=(128, 128))
            seeds[path.name] = path.read_bytes()
    return seeds


def _catalog_seeds():
    from deepscope.galaxy.synthetic import synthetic_catalog

    from astropy.table import Table

    table = synthetic_catalog().head(8)
    parquet = io.BytesIO()
    table.to_parquet(parquet, index=False)
    fits_table = io.BytesIO()
    Table.from_pandas(table).write(fits_table, format="fits")
    return {"cat.csv": table.to_csv(index=False).encode(), "cat.parquet": parquet.getvalue(),
            "cat.fits": fits_table.getvalue()}


def _checkpoint_seed():
    import torch

    buffer = io.BytesIO()
    torch.save({"model": "tiny", "state_dict": {"w": torch.zeros(3)}, "version": "0"}, buffer)
    return buffer.getvalue()


# --- the readers -------------------------------------------------------------

def _galaxy_readers():
    from deepscope.galaxy import io as gio

    return [gio.read_galaxy_image, gio.read_rgb_image, gio.read_fits_band, gio.read_fits_bands]


def _read_catalog(path):
    from deepscope.core.files import read_table
    from deepscope.galaxy.catalog import select_sample
    from deepscope.galaxy.crossmatch import crossmatch

    table = read_table(path)
    select_sample(table, source=str(path))
    crossmatch(table, [("labels", table)], 2.0, sample_name=str(path), label_sources=[str(path)])


def _spectra_readers():
    from deepscope.spectra.io import files as sio

    return [sio.read_spectrum]


def _read_micrograph(path):
    from deepscope.cryoem.io import read_micrograph_reduced

    read_micrograph_reduced(path, reduce=2)


def _read_coordinates(path):
    from deepscope.cryoem.io import read_coordinates

    read_coordinates(path, allow_empty=True)


def _load_checkpoint(path):
    from deepscope.core.checkpoint import load_checkpoint

    load_checkpoint(path)


def _region_labels(path):
    from deepscope.cryoem.io import read_region_labels

    read_region_labels(path)


def _all_galaxy(path):
    for reader in _galaxy_readers():
        try:
            reader(path)
        except DeepscopeError:
            pass


def _all_spectra(path):
    for reader in _spectra_readers():
        try:
            reader(path)
        except DeepscopeError:
            pass


def _micrograph_and_labels(path):
    try:
        _read_micrograph(path)
    finally:
        if path.suffix == ".png":
            _region_labels(path)


# (name, reader, suffixes, seeds)
FAMILIES = {
    "galaxy": (_all_galaxy, (".jpg", ".jpeg", ".png", ".fits", ".fit", ".fits.gz", ".fz"), _galaxy_seeds),
    "catalog": (_read_catalog, (".csv", ".parquet", ".fits"), _catalog_seeds),
    "spectra": (_all_spectra, (".fits", ".fits.gz", ".txt", ".rbn", ".dat.gz"), _spectra_seeds),
    "micrograph": (_micrograph_and_labels, (".mrc", ".mrcs", ".tif", ".jpg", ".png"), _micrograph_seeds),
    "coordinates": (_read_coordinates, (".star", ".box", ".csv", ".cs"), _coordinate_seeds),
    "checkpoint": (_load_checkpoint, (".pt",), lambda: {"model.pt": _checkpoint_seed()}),
}
_SEEDS = {}


def _seeds(family):
    if family not in _SEEDS:
        _SEEDS[family] = FAMILIES[family][2]()
    return _SEEDS[family]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_seed_files_are_valid(family):
    """The unmutated seeds read cleanly, so mutations start from real files."""
    reader = FAMILIES[family][0]
    for name, data in _seeds(family).items():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if family in ("galaxy", "spectra"):
                    # these try every reader of the family; the matching one must succeed
                    _seeds_read_by_own_reader(family, path)
                else:
                    reader(path)


def _seeds_read_by_own_reader(family, path):
    from deepscope.galaxy.io import read_fits_band, read_galaxy_image
    from deepscope.spectra.io.files import read_spectrum

    if family == "spectra":
        read_spectrum(path)
    elif path.name.startswith("b."):
        read_fits_band(path)
    else:
        read_galaxy_image(path)


SUFFIXES = [(family, suffix) for family, (_, suffixes, _) in FAMILIES.items() for suffix in suffixes]


@pytest.mark.parametrize(("family", "suffix"), SUFFIXES)
@RANDOM
@given(data=st.binary(max_size=4096))
def test_random_bytes(family, suffix, data):
    _check(FAMILIES[family][0], data, "random" + suffix)


@pytest.mark.parametrize("family", list(FAMILIES))
@MUTATED
@given(data=st.data())
def test_mutated_files(family, data):
    reader = FAMILIES[family][0]
    seeds = _seeds(family)
    name = data.draw(st.sampled_from(sorted(seeds)), label="seed")
    mutated = data.draw(_mutations(seeds[name]), label="mutated")
    _check(reader, mutated, name)


def _parse_mk_or_refuse(text):
    """Parse an MK string; refusing it with a DeepscopeError is fine, anything else fails."""
    from deepscope.spectra.mktype import parse_mk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parse_mk(text)
        except DeepscopeError:
            pass


@RANDOM
@given(text=st.text(max_size=40))
def test_mk_parser_on_random_text(text):
    _parse_mk_or_refuse(text)


@MUTATED
@given(text=st.text(alphabet="OBAFGKMLTsdgI V0123456789.:/-+abemnpkvw()?", max_size=16))
def test_mk_parser_on_type_like_text(text):
    _parse_mk_or_refuse(text)
