"""Write the hostile-input corpus of this folder: small malformed files of every domain.

The files are committed to git; this script regenerates them byte for byte
(fixed seeds, no time stamps), so a change to the corpus is a change to this
script. Each file is fed to a command by ``tests/test_hostile_inputs.py``
according to ``expected.csv``, which must have one row per file.

Run from anywhere::

    python tests/hostile/make_corpus.py
"""

import gzip
import io
import struct
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
from astropy.io import fits

HERE = Path(__file__).resolve().parent


def _fits_bytes(hdus):
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer)
    return buffer.getvalue()


def _header_only(cards):
    """A FITS primary header with the given cards and no data at all."""
    header = fits.Header()
    for key, value in cards:
        header[key] = value
    return header.tostring().encode("ascii")


def _image_bytes(array, kind):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=kind)
    return buffer.getvalue()


def _mrc_bytes(shape, fill=0.0):
    import mrcfile

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # mrcfile warns about NaN data, which is the point of one file here
        warnings.simplefilter("ignore", RuntimeWarning)
        path = Path(tmp) / "m.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(np.full(shape, fill, np.float32))
            # mrcfile stamps the date in the first label; fixed, for a reproducible corpus
            mrc.header.label[0] = b"deepscope hostile corpus"
        return path.read_bytes()


def _spectrum_image(n=64, **cards):
    hdu = fits.PrimaryHDU(np.linspace(1.0, 2.0, n).astype(np.float32))
    hdu.header["CRVAL1"] = 4000.0
    hdu.header["CDELT1"] = 2.0
    hdu.header["CRPIX1"] = 1.0
    for key, value in cards.items():
        hdu.header[key] = value
    return hdu


def _gigantic_tiles():
    """A tile-compressed cube whose header claims 10**9 columns."""
    data = bytearray(_fits_bytes([fits.PrimaryHDU(), fits.CompImageHDU(np.ones((3, 4, 4), np.int16))]))
    start = data.find(b"ZNAXIS1 =")
    data[start:start + 80] = f"ZNAXIS1 = {10**9:20d}".ljust(80).encode()
    return bytes(data)


def _galaxy_files(rng):
    gradient = (np.arange(24 * 24 * 3).reshape(24, 24, 3) % 256).astype(np.uint8)
    jpeg = _image_bytes(gradient, "JPEG")
    png = _image_bytes(gradient, "PNG")
    cube = _fits_bytes([fits.PrimaryHDU(rng.normal(size=(3, 16, 16)).astype(np.float32))])
    return {
        "galaxy_empty.jpg": b"",
        "galaxy_truncated.jpg": jpeg[: len(jpeg) // 2],
        "galaxy_text_named.jpg": b"this is a text file, not a JPEG\n",
        "galaxy_png_magic_then_text.jpg": b"\x89PNG\r\n\x1a\n" + b"hello, I am text after a PNG magic\n",
        "galaxy_truncated.png": png[: len(png) // 2],
        "galaxy_1d.fits": _fits_bytes([fits.PrimaryHDU(np.ones(16, np.float32))]),
        "galaxy_4d.fits": _fits_bytes([fits.PrimaryHDU(np.ones((2, 3, 4, 4), np.float32))]),
        "galaxy_2band.fits": _fits_bytes([fits.PrimaryHDU(np.ones((2, 8, 8), np.float32))]),
        "galaxy_single_band.fits": _fits_bytes([fits.PrimaryHDU(np.ones((8, 8), np.float32))]),
        "galaxy_all_nan.fits": _fits_bytes([fits.PrimaryHDU(np.full((3, 8, 8), np.nan, np.float32))]),
        "galaxy_all_inf.fits": _fits_bytes([fits.PrimaryHDU(np.full((3, 8, 8), np.inf, np.float32))]),
        "galaxy_gigantic_naxis.fits": _header_only([
            ("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 3),
            ("NAXIS1", 10**12), ("NAXIS2", 16), ("NAXIS3", 3)]),
        "galaxy_header_only.fits": _header_only([
            ("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 3), ("NAXIS1", 64), ("NAXIS2", 64), ("NAXIS3", 3)]),
        "galaxy_truncated.fits": cube[: 2880 + 1000],
        "galaxy_not_gzip.fits.gz": b"\x1f\x8b" + b"this is not deflate data at all" * 4,
        "galaxy_gigantic_tiles.fits.fz": _gigantic_tiles(),
    }


def _spectra_files(rng):
    spectrum = _fits_bytes([_spectrum_image(n=1024)])
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="WAVELENGTH", format="E", array=np.linspace(4000, 5000, 256)),
        fits.Column(name="FLUX", format="E", array=np.ones(256)),
    ])
    no_wave = fits.BinTableHDU.from_columns([
        fits.Column(name="PIXEL", format="E", array=np.arange(16.0)),
        fits.Column(name="FLUX", format="E", array=np.ones(16)),
    ])
    nan_spectrum = _spectrum_image()
    nan_spectrum.data[:] = np.nan
    return {
        "spec_truncated_image.fits": spectrum[: 2880 + 500],
        "spec_truncated_table.fits": _fits_bytes([fits.PrimaryHDU(), table])[: 2 * 2880 + 300],
        "spec_table_no_wavelength.fits": _fits_bytes([fits.PrimaryHDU(), no_wave]),
        "spec_all_nan.fits": _fits_bytes([nan_spectrum]),
        "spec_negative_wavelength.fits": _fits_bytes([_spectrum_image(CRVAL1=-5000.0)]),
        "spec_no_wcs.fits": _fits_bytes([fits.PrimaryHDU(np.ones(64, np.float32))]),
        "spec_gigantic_naxis.fits": _header_only([
            ("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 1), ("NAXIS1", 10**12),
            ("CRVAL1", 4000.0), ("CDELT1", 1.0)]),
        "spec_not_gzip.fits.gz": b"\x1f\x8b\x08\x00" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)),
        "spec_one_column.txt": "".join(f"{4000 + i}\n" for i in range(20)).encode(),
        "spec_garbage.txt": b"Lorem ipsum dolor sit amet\nconsectetur adipiscing elit\n",
        "spec_decreasing_negative.txt": "".join(f"{10 - 2 * i} 1.0\n" for i in range(20)).encode(),
        "spec_empty.dat": b"",
        "spec_gzip_of_garbage.txt.gz": gzip.compress(b"\x00\x01\x02binary\x00garbage" * 8, mtime=0),
    }


def _cryoem_files(rng):
    mrc = _mrc_bytes((32, 32))
    absurd = bytearray(mrc[: 1024 + 256])
    absurd[0:12] = struct.pack("<3i", 2**30, 2**30, 2**30)
    negative = bytearray(mrc)
    negative[0:12] = struct.pack("<3i", -32, 32, 1)
    return {
        "mrc_empty.mrc": b"",
        "mrc_header_only.mrc": mrc[:1024],
        "mrc_truncated.mrc": mrc[: 1024 + 32 * 32 * 4 // 2],
        "mrc_absurd_dims.mrc": bytes(absurd),
        "mrc_negative_dims.mrc": bytes(negative),
        "mrc_all_nan.mrc": _mrc_bytes((16, 16), fill=np.nan),
        "micrograph_garbage.tif": b"II*\x00" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
        "micrograph_garbage.jpg": b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)),
        "micrograph_text.png": b"just some text in a .png file\n",
        "micrograph_tiny.png": _image_bytes(np.zeros((4, 4), np.uint8), "PNG"),
        "coords_no_xy.star": b"data_\n\nloop_\n_rlnMicrographName #1\n_rlnDefocusU #2\na.mrc 10000\nb.mrc 12000\n",
        "coords_empty_truth.star": b"data_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n",
        "coords_text.box": b"these are not\nbox coordinates\n",
        "coords_three_columns.box": b"10 20 100\n30 40 100\n",
        "coords_missing_columns.csv": b"X-Coordinate,Diameter\n10,100\n20,100\n",
        "coords_non_numeric.csv": b"x,y\n10,abc\n20,def\n",
        "coords_garbage.cs": b"\x93NUMPY garbage that is not an npy file" * 3,
        "coords_fake_zip.cs": b"PK\x03\x04" + b"not really a zip archive" * 4,
        "coords_non_numeric.star": b"data_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n10 abc\n20 def\n",
    }


def _gigantic_catalog():
    """A FITS catalogue whose table claims 10**10 rows."""
    table = fits.BinTableHDU.from_columns([
        fits.Column(name=name, format="D", array=np.full(4, value))
        for name, value in (("ra", 150.0), ("dec", 2.0), ("petroMag_r", 16.0))])
    data = bytearray(_fits_bytes([fits.PrimaryHDU(), table]))
    start = data.find(b"NAXIS2  =", 2880)
    data[start:start + 80] = f"NAXIS2  = {10**10:20d}".ljust(80).encode()
    return bytes(data)


def _table_files(rng):
    return {
        "catalog_gigantic_naxis2.fits": _gigantic_catalog(),
        "catalog_missing_columns.csv": b"objid,ra,dec\n1,150.0,2.0\n2,151.0,2.1\n",
        "catalog_empty.csv": b"",
        "catalog_garbage.parquet": b"PAR1" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)),
        "catalog_no_coordinates.csv": b"objid,petroMag_r,z\n1,16.0,0.05\n",
        "catalog_non_numeric_mag.csv": b"objid,petroMag_r,z,petroR50_r\n1,bright,0.05,6\n2,dim,0.1,7\n",
        "labels_mismatched_names.csv": (
            b"file,barred,split\nimages/no_such_galaxy_1.jpeg,1,test\nimages/no_such_galaxy_2.jpeg,0,test\n"),
    }


def _checkpoint_files():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        # fixed time stamps, for a reproducible corpus
        zf.writestr(zipfile.ZipInfo("model/data.pkl", (2020, 1, 1, 0, 0, 0)), b"\x80\x02}q\x00." * 100)
        zf.writestr(zipfile.ZipInfo("model/version", (2020, 1, 1, 0, 0, 0)), b"3\n")
    return {
        "model_truncated.pt": archive.getvalue()[:120],
        "model_text.pt": b"this is not a checkpoint\n",
        "model_empty.pt": b"",
    }


def corpus():
    """Name -> bytes of every hostile file.

    Returns
    -------
    dict of str -> bytes
    """
    rng = np.random.default_rng(5)
    files = {}
    for part in (_galaxy_files(rng), _spectra_files(rng), _cryoem_files(rng), _table_files(rng),
                 _checkpoint_files()):
        files.update(part)
    return files


def main():
    """Write the corpus next to this script."""
    for name, data in corpus().items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
