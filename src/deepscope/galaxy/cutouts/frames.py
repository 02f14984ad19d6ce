"""Survey frames: single-band FITS images with a celestial WCS, found by band and position.

A frame is one band of one survey field (SDSS ``frame-r-001000-1-0027.fits.bz2``:
calibrated nanomaggies, sky subtracted, gnomonic WCS). Its band comes from the
``FILTER`` header card or from an SDSS-style file name; a file whose two
answers disagree is refused, since a wrong band gives a galaxy the wrong
colours without any other sign. Headers are read once, when the frames are
indexed; pixels only when a cutout needs them, a few frames kept in memory.
"""

import bz2
import functools
import logging
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepscope.core.files import collect_inputs, opening
from deepscope.errors import FormatError, InputError, first_line
from deepscope.galaxy.cutouts.composite import sky_level
from deepscope.galaxy.io import celestial_wcs, fits_pixel_scale, read_fits_band

logger = logging.getLogger(__name__)

SDSS_BANDS = "ugriz"
FRAME_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fits.bz2", ".fit.bz2", ".fz")
# frame-[ugriz]-RUN6-CAMCOL-FIELD4.fits[.bz2|.gz], as SDSS DR8+ names its corrected frames.
SDSS_FRAME_NAME = re.compile(r"^frame-(?P<band>[ugriz])-\d{6}-\d-\d{4}\.fits?(\.bz2|\.gz)?$", re.IGNORECASE)
# FILTER card values: "r", "r'", "SDSS_r", "sdss-r" ...
_FILTER_VALUE = re.compile(r"^(sdss[_\- ]?)?(?P<band>[ugriz])'?$", re.IGNORECASE)
# An SDSS frame is 12 MB as float32; a .bz2 that inflates past 1 GiB is corrupt or hostile.
MAX_FRAME_BYTES = 1 << 30
# Frames held in memory at once (about 12 MB each for SDSS): enough for the
# fields around one galaxy in three bands, with rows taken frame by frame.
FRAME_CACHE_SIZE = 12


@dataclass(frozen=True, eq=False)
class Frame:
    """One single-band frame: where it is on disk and on the sky."""

    path: Path
    band: str  # u, g, r, i or z
    wcs: object  # 2-D celestial astropy WCS (0-based pixels: x = column, y = row)
    shape: tuple  # (height, width)
    pixel_scale: float  # arcsec per pixel

    def pixels(self, ra, dec):
        """Frame pixel coordinates ``(x, y)`` (arrays) of sky positions in degrees."""
        x, y = self.wcs.world_to_pixel_values(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float))
        return np.asarray(x), np.asarray(y)

    def holds(self, x, y, margin=0.0):
        """Whether 0-based frame pixel positions lie on the frame, ``margin`` pixels from its edges (bool array)."""
        height, width = self.shape
        x, y = np.asarray(x), np.asarray(y)
        return (x >= margin - 0.5) & (x <= width - 0.5 - margin) & (y >= margin - 0.5) & (y <= height - 0.5 - margin)

    def sky_circle(self):
        """``(ra, dec, radius)`` in degrees of a circle enclosing the frame."""
        height, width = self.shape
        xs = np.array([-0.5, width - 0.5, width - 0.5, -0.5, (width - 1) / 2])
        ys = np.array([-0.5, -0.5, height - 0.5, height - 0.5, (height - 1) / 2])
        ra, dec = self.wcs.pixel_to_world_values(xs, ys)
        radius = angular_distance(ra[4], dec[4], ra[:4], dec[:4]).max()
        return float(ra[4]), float(dec[4]), float(radius)


def angular_distance(ra1, dec1, ra2, dec2):
    """Great-circle distance in degrees between positions in degrees (haversine; exact at small separations).

    Examples
    --------
    >>> round(float(angular_distance(10.0, 0.0, 10.0, 1.0)), 6)
    1.0
    """
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    inner = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(inner, 0.0, 1.0))))


def frame_band(path, header):
    """The band of a frame (``u, g, r, i, z``), from its header's ``FILTER`` card or its SDSS-style name.

    Raises
    ------
    FormatError
        If ``FILTER`` names no SDSS band, the name and ``FILTER`` disagree,
        or neither tells the band.

    Examples
    --------
    >>> from pathlib import Path
    >>> from astropy.io import fits
    >>> frame_band(Path("frame-i-001000-1-0027.fits.bz2"), fits.Header())
    'i'
    >>> frame_band(Path("field7.fits"), fits.Header({"FILTER": "r "}))
    'r'
    """
    named = SDSS_FRAME_NAME.match(Path(path).name)
    from_name = named["band"].lower() if named else None
    card = header.get("FILTER")
    from_card = None
    if card is not None:
        parsed = _FILTER_VALUE.match(str(card).strip())
        if parsed is None:
            msg = f"{path}: FILTER {str(card).strip()!r} is not an SDSS band ({', '.join(SDSS_BANDS)})"
            raise FormatError(msg)
        from_card = parsed["band"].lower()
    if from_name and from_card and from_name != from_card:
        msg = f"{path}: the name says band {from_name} but the FILTER card says {from_card}"
        raise FormatError(msg)
    band = from_card or from_name
    if band is None:
        msg = (f"{path}: no band: no FILTER card, and not named like an SDSS frame "
               "(frame-g-RRRRRR-C-FFFF.fits)")
        raise FormatError(msg)
    return band


def _is_2d_image(header):
    return header.get("NAXIS") == 2 and isinstance(header.get("NAXIS1"), int) and isinstance(header.get("NAXIS2"), int)


def _bz2_primary_header(path):
    """The primary header of a .bz2 FITS file, or None when it does not parse.

    astropy decompresses a whole .bz2 file to open it (seconds for an SDSS
    frame); the header is in the first few kB of the stream.
    """
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with bz2.open(path, "rb") as stream:
                return fits.Header.fromfile(stream)
    except Exception:  # noqa: BLE001 - the full reader below reports what is wrong
        return None


def _image_header(path):
    """Header and shape of the first 2-D image HDU, without reading the pixels."""
    from astropy.io import fits

    if path.name.lower().endswith(".bz2"):
        header = _bz2_primary_header(path)
        if header is not None and header.get("SIMPLE") is True and _is_2d_image(header):
            return header, (int(header["NAXIS2"]), int(header["NAXIS1"]))
    try:
        with warnings.catch_warnings():
            # Survey headers carry cards astropy fixes and reports; the WCS check below is what matters.
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                for hdu in hdul:
                    header = hdu.header
                    if hdu.is_image and _is_2d_image(header):
                        height, width = int(header["NAXIS2"]), int(header["NAXIS1"])
                        if isinstance(hdu, fits.CompImageHDU):
                            height, width = hdu.shape
                        return header.copy(), (height, width)
    except Exception as exc:  # noqa: BLE001 - any astropy failure means an unreadable frame
        msg = f"{path}: cannot read FITS header ({first_line(exc)})"
        raise FormatError(msg) from None
    msg = f"{path}: no 2-D image in this FITS file; a frame is one band of one field"
    raise FormatError(msg)


def read_frame_header(path):
    """Index one frame (FITS, optionally ``.gz``, ``.bz2`` or tile-compressed): band, WCS, shape, pixel scale.

    Raises
    ------
    FormatError
        If the header cannot be read, holds no 2-D image or no celestial
        WCS, or the band is unknown or contradictory.
    """
    path = Path(path)
    header, shape = _image_header(path)
    band = frame_band(path, header)
    wcs = celestial_wcs(header)
    scale = fits_pixel_scale(header)
    if wcs is None or scale is None:
        msg = f"{path}: no celestial WCS in the header (CTYPE, CRVAL, CRPIX, CD cards); a frame must say where it is"
        raise FormatError(msg)
    return Frame(path=path, band=band, wcs=wcs, shape=shape, pixel_scale=scale)


def index_frames(paths, bands="gri", progress: bool = True):
    """Find the frames of the wanted bands under files and directories.

    Parameters
    ----------
    paths : sequence of str or Path
        Frame files, or directories searched recursively for FITS files (``.fits``, ``.fits.bz2``, ``.fz`` ...).
    bands : str
        Bands wanted; frames of other SDSS bands are skipped.
    progress : bool

    Returns
    -------
    dict of str to list of Frame
        Frames per wanted band, in the order found (sorted within each directory).

    Raises
    ------
    InputError
        If a path does not exist, nothing was found, or a wanted band has no frame.
    FormatError
        If a frame has no WCS or no (or a contradictory) band: every frame is checked before any cutout.
    """
    from deepscope.core.progress import progress_bar

    files = collect_inputs(paths, FRAME_SUFFIXES)
    found = {band: [] for band in bands}
    skipped = 0
    for path in progress_bar(files, enabled=progress, desc="reading frame headers", unit="frame", leave=False):
        frame = read_frame_header(path)
        if frame.band in found:
            found[frame.band].append(frame)
        else:
            skipped += 1
    if skipped:
        logger.info("skipped %d frame(s) in bands other than %s", skipped, ", ".join(bands))
    missing = [band for band, frames in found.items() if not frames]
    if missing:
        have = ", ".join(f"{len(v)} {b}" for b, v in found.items() if v) or "none"
        msg = (f"no {', '.join(missing)}-band frame in {', '.join(map(str, paths))} "
               f"(found {have}); a colour cutout needs g, r and i")
        raise InputError(msg)
    logger.info("frames: %s", ", ".join(f"{len(v)} {b}" for b, v in found.items()))
    return found


def _bunzip(path, target):
    """Decompress a .bz2 file, refusing one that inflates beyond MAX_FRAME_BYTES."""
    written = 0
    try:
        with bz2.open(path, "rb") as source, open(target, "wb") as sink:
            while chunk := source.read(1 << 20):
                written += len(chunk)
                if written > MAX_FRAME_BYTES:
                    msg = f"{path}: decompresses to more than {MAX_FRAME_BYTES >> 20} MB; not a frame"
                    raise FormatError(msg)
                sink.write(chunk)
    except (OSError, EOFError, ValueError) as exc:
        msg = f"{path}: cannot decompress ({first_line(exc)})"
        raise FormatError(msg) from None


def read_frame_pixels(path):
    """The sky-subtracted pixels of a frame, read-only float32 ``(height, width)``; recent frames stay cached.

    The sky is the sigma-clipped median of the whole frame
    (:func:`~deepscope.galaxy.cutouts.composite.sky_level`): a cutout a few
    galaxy radii wide is mostly galaxy, and frames of one mosaic may stand on
    different pedestals. Non-finite pixels become the median
    (:func:`~deepscope.galaxy.io.read_fits_band`).

    Raises
    ------
    FormatError
        If the file is missing, truncated or corrupt.
    """
    path = Path(path)
    with opening(path):
        stat = path.stat()
    # Keyed by size and time too, so a frame rewritten in place is read again.
    return _cached_pixels(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=FRAME_CACHE_SIZE)
def _cached_pixels(path, size, mtime_ns):
    if not path.name.lower().endswith(".bz2"):
        image, _ = read_fits_band(path)
    else:
        # read_fits_band knows plain and gzipped FITS by their magic bytes,
        # not bzip2: give it the decompressed file, and the user the real name.
        with tempfile.TemporaryDirectory(prefix="deepscope-frame-") as tmp:
            plain = Path(tmp) / path.name[:-4]
            _bunzip(path, plain)
            try:
                image, _ = read_fits_band(plain)
            except FormatError as exc:
                raise FormatError(str(exc).replace(str(plain), str(path))) from None
    image = (image - np.float32(sky_level(image))).astype(np.float32)
    image.setflags(write=False)
    return image
