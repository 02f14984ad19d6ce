"""Particle extraction (``cryoem extract``): boxes cut around picks, downsampled, normalised, written as a stack.

RELION's conventions: each particle image is a square box centred on the
pick (x = column, y = row of the micrograph as read), optionally downsampled
by Fourier cropping (no aliasing, no interpolation blur), then normalised to
zero mean and unit standard deviation outside the particle disk, so that
micrographs of different exposure are comparable. Box pixels past the
micrograph edge get the box's own mean, which normalises to 0.

:func:`extract_to_stack` writes the particles into the ``.mrcs`` stack as
they are cut, a few at a time, so its memory does not grow with their
number; beside it goes a RELION 4 particle STAR file (``data_optics`` and
``data_particles``). :func:`extract_pairs` keeps the images in memory, for
2D classification.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.cryoem.coordinates import relative_path, write_relion_star
from deepscope.cryoem.io import read_micrograph, read_micrograph_header
from deepscope.errors import FormatError, InputError

log = logging.getLogger(__name__)

# Particles are cut, cropped and normalised in chunks whose complex spectrum
# (16 bytes per box pixel) stays under this many bytes: memory flat in their number.
CHUNK_BYTES = 32 * 2**20


@dataclass
class Particles:
    """Extracted particle images and where they came from.

    Attributes
    ----------
    images : numpy.ndarray
        ``(n, size, size)`` float32, normalised.
    table : pandas.DataFrame
        One row per image: ``micrograph`` (stem), ``path`` (micrograph file),
        ``x``, ``y`` (centres exactly as read, in micrograph pixels).
    pixel_scale : float
        Micrograph pixels per image pixel (``box / size``).
    """

    images: np.ndarray
    table: pd.DataFrame
    pixel_scale: float


def check_box(box: int, diameter: float, shape: tuple[int, int], path) -> None:
    """Refuse a ``box`` (px) not larger than the ``diameter`` or larger than the micrograph ``path`` of ``shape``.

    Raises
    ------
    InputError

    Examples
    --------
    >>> check_box(160, 108, (4096, 4096), "m.jpg")
    >>> check_box(5000, 108, (4096, 4096), "m.jpg")
    Traceback (most recent call last):
    ...
    deepscope.errors.InputError: m.jpg: --box 5000 px is larger than the micrograph (4096 x 4096 px)
    """
    if box > min(shape):
        msg = f"{path}: --box {box} px is larger than the micrograph ({shape[1]} x {shape[0]} px)"
        raise InputError(msg)
    if box <= diameter:
        msg = f"--box {box} px must be larger than --diameter {diameter:g} px (1.5-2 x the diameter is usual)"
        raise InputError(msg)


def check_inside(coords: pd.DataFrame, shape: tuple[int, int], path) -> None:
    """Refuse coordinates outside the micrograph ``path`` of ``shape`` (usually the wrong frame or micrograph).

    The message names the coordinate file (``coords["source"]``, else ``path``),
    the first such coordinate and how many there are.

    Raises
    ------
    InputError

    Examples
    --------
    >>> check_inside(pd.DataFrame({"x": [5.0, 12.0], "y": [3.0, 3.0]}), (10, 10), "m.mrc")
    Traceback (most recent call last):
    ...
    deepscope.errors.InputError: m.mrc: 1 coordinate(s) outside the 10 x 10 px micrograph, first (12, 3); \
wrong micrograph or frame (--flip-y)?
    """
    x = coords["x"].to_numpy()
    y = coords["y"].to_numpy()
    outside = (x < 0) | (y < 0) | (x > shape[1] - 1) | (y > shape[0] - 1)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        where = coords["source"].iloc[first] if "source" in coords else path
        msg = (f"{where}: {int(outside.sum())} coordinate(s) outside the {shape[1]} x {shape[0]} px micrograph, "
               f"first ({x[first]:g}, {y[first]:g}); wrong micrograph or frame (--flip-y)?")
        raise InputError(msg)


def cut_boxes(image: np.ndarray, x: np.ndarray, y: np.ndarray, box: int) -> np.ndarray:
    """Cut ``(n, box, box)`` float32 windows centred on the rounded ``x`` (column), ``y`` (row).

    Pixels past the edge hold the mean of the box's pixels inside the micrograph.

    Examples
    --------
    >>> image = np.arange(36, dtype=np.float32).reshape(6, 6)
    >>> cut_boxes(image, np.array([2.0]), np.array([1.0]), 2)[0].tolist()
    [[1.0, 2.0], [7.0, 8.0]]
    >>> cut_boxes(image, np.array([0.0]), np.array([0.0]), 2)[0].tolist()
    [[0.0, 0.0], [0.0, 0.0]]
    """
    rows, cols = image.shape
    out = np.empty((len(x), box, box), dtype=np.float32)
    # the centre pixel of an even box is the one right of / below the middle
    left = np.round(np.asarray(x)).astype(np.int64) - box // 2
    top = np.round(np.asarray(y)).astype(np.int64) - box // 2
    for index, (x0, y0) in enumerate(zip(left, top)):
        r0, r1 = max(y0, 0), min(y0 + box, rows)
        c0, c1 = max(x0, 0), min(x0 + box, cols)
        window = image[r0:r1, c0:c1]
        if window.shape != (box, box):
            out[index] = window.mean()
        out[index, r0 - y0:r1 - y0, c0 - x0:c1 - x0] = window
    return out


def fourier_crop(stack: np.ndarray, size: int) -> np.ndarray:
    """Downsample ``(n, box, box)`` images to ``(n, size, size)`` float32, keeping the lowest frequencies (and the mean).

    Examples
    --------
    >>> fourier_crop(np.full((1, 8, 8), 3.0), 4)[0].round(6).tolist()[0]
    [3.0, 3.0, 3.0, 3.0]
    """
    box = stack.shape[-1]
    if size == box:
        return stack.astype(np.float32, copy=False)
    spectrum = np.fft.fftshift(np.fft.fft2(stack), axes=(-2, -1))
    start = box // 2 - size // 2
    cropped = spectrum[:, start:start + size, start:start + size]
    images = np.fft.ifft2(np.fft.ifftshift(cropped, axes=(-2, -1))).real
    return (images * (size / box) ** 2).astype(np.float32)


def disk_radius_mask(size: int, radius: float) -> np.ndarray:
    """Boolean ``(size, size)`` mask of pixels within ``radius`` of the box centre.

    The centre is pixel ``size // 2`` (where :func:`cut_boxes` puts the pick).

    Examples
    --------
    >>> disk_radius_mask(5, 1).astype(int).tolist()[2]
    [0, 1, 1, 1, 0]
    """
    grid = np.arange(size) - size // 2
    return grid[:, None] ** 2 + grid[None, :] ** 2 <= radius**2


def normalise_background(stack: np.ndarray, radius: float) -> np.ndarray:
    """Zero mean, unit standard deviation outside the particle disk of ``radius`` px (RELION's ``--norm``).

    A box with a flat background is only shifted, not scaled.

    Examples
    --------
    >>> images = np.random.default_rng(0).normal(5.0, 2.0, (1, 32, 32))
    >>> out = normalise_background(images, 8)
    >>> bool(abs(out[0][~disk_radius_mask(32, 8)].std() - 1) < 1e-5)
    True
    """
    background = stack[:, ~disk_radius_mask(stack.shape[-1], radius)]
    mean = background.mean(axis=1)[:, None, None]
    std = background.std(axis=1)[:, None, None]
    return ((stack - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def extract_micrograph(image: np.ndarray, coords: pd.DataFrame, diameter: float, box: int,
                       size: int | None = None) -> np.ndarray:
    """Extract normalised particle images from one micrograph.

    ``coords`` holds ``x``, ``y`` centres; ``diameter`` and ``box`` are in
    micrograph pixels; the ``(n, size, size)`` float32 images are
    Fourier-cropped to ``size`` (default ``box``).

    Examples
    --------
    >>> image = np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32)
    >>> coords = pd.DataFrame({"x": [20.0, 40.0], "y": [30.0, 33.0]})
    >>> extract_micrograph(image, coords, 10, 24, size=12).shape
    (2, 12, 12)
    """
    size = size or box
    stack = cut_boxes(image, coords["x"].to_numpy(), coords["y"].to_numpy(), box)
    stack = fourier_crop(stack, size)
    return normalise_background(stack, diameter / 2 * size / box)


@dataclass
class Optics:
    """What RELION's ``data_optics`` block says about the microscope, where known.

    Attributes
    ----------
    voltage : float, optional
        Acceleration voltage, kV (``rlnVoltage``).
    spherical_aberration : float, optional
        Cs, mm (``rlnSphericalAberration``).
    amplitude_contrast : float, optional
        Fraction, e.g. 0.1 (``rlnAmplitudeContrast``).
    """

    voltage: float | None = None
    spherical_aberration: float | None = None
    amplitude_contrast: float | None = None


@dataclass
class StackSummary:
    """What :func:`extract_to_stack` wrote.

    Attributes
    ----------
    stack, star : Path
    particles, micrographs : int
    pixel_size : float
        Angstrom per particle-image pixel (``rlnImagePixelSize``).
    """

    stack: Path
    star: Path
    particles: int
    micrographs: int
    pixel_size: float


def check_pairs(pairs, diameter: float, box: int) -> list[float | None]:
    """Check every micrograph's header against its coordinates before any is read in full.

    Parameters
    ----------
    pairs : sequence of (Path, pandas.DataFrame)
        As :func:`extract_pairs` takes them.
    diameter, box : float, int
        Micrograph pixels.

    Returns
    -------
    list of float or None
        The MRC pixel size of each micrograph that has particles (None where unknown).

    Raises
    ------
    FormatError
        If a micrograph is unreadable.
    InputError
        If no particle is given, a coordinate lies outside its micrograph, or
        the box is larger than a micrograph.
    """
    pixel_sizes = []
    for micrograph, coords in pairs:
        if len(coords):
            shape, pixel_size = read_micrograph_header(micrograph)
            check_box(box, diameter, shape, micrograph)
            check_inside(coords, shape, micrograph)
            pixel_sizes.append(pixel_size)
    if not pixel_sizes:
        msg = f"no particles: the coordinate files of {len(pairs)} micrograph(s) are all empty"
        raise InputError(msg)
    return pixel_sizes


def resolve_pixel_size(given: float | None, from_headers: list[float | None]) -> float:
    """The micrographs' pixel size: ``given``, else their MRC headers' (one value), else 1.0 with a warning.

    Raises
    ------
    InputError
        If the headers disagree (more than 0.1%) and none is given.

    Examples
    --------
    >>> resolve_pixel_size(None, [1.34, None, 1.34])
    1.34
    >>> resolve_pixel_size(0.885, [1.34])
    0.885
    """
    if given is not None:
        return float(given)
    known = sorted({float(p) for p in from_headers if p is not None})
    if not known:
        log.warning("no pixel size in the micrographs' headers (TIFF, JPEG, PNG or an MRC without one): "
                    "writing 1.0 A per pixel; give --pixel-size")
        return 1.0
    if known[-1] > known[0] * 1.001:
        msg = (f"the micrographs' MRC headers give different pixel sizes ({', '.join(f'{p:g}' for p in known)} A); "
               "extract them separately, or give --pixel-size")
        raise InputError(msg)
    return known[0]


def iter_particles(pairs, diameter: float, box: int, size: int | None = None, progress: bool = True):
    """Cut, crop and normalise particles a chunk at a time (:data:`CHUNK_BYTES`), micrograph by micrograph.

    ``pairs`` as :func:`extract_pairs` takes them, checked beforehand
    (:func:`check_pairs`).

    Yields
    ------
    table : pandas.DataFrame
        The chunk's coordinate rows (index reset), with ``micrograph`` (stem) and ``path``.
    images : numpy.ndarray
        ``(n, size, size)`` float32 (:func:`extract_micrograph`).
    """
    from deepscope.core.progress import progress_bar

    size = size or box
    chunk = max(1, CHUNK_BYTES // (16 * box * box))
    for micrograph, coords in progress_bar(pairs, enabled=progress, desc="extract", unit="micrograph"):
        if len(coords) == 0:
            continue
        image = read_micrograph(micrograph)
        coords = coords.reset_index(drop=True).assign(micrograph=Path(micrograph).stem, path=str(micrograph))
        for start in range(0, len(coords), chunk):
            rows = coords.iloc[start:start + chunk]
            yield rows, extract_micrograph(image, rows, diameter, box, size)


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    first = ["micrograph", "path", "x", "y"]
    return table[first + [c for c in table.columns if c not in first]]


def extract_pairs(pairs, diameter: float, box: int, size: int | None = None, progress: bool = True) -> Particles:
    """Read each micrograph and extract the particles of its coordinate table, in memory.

    Every micrograph's header is checked (coordinates inside it, box fits)
    before any is read in full.

    Parameters
    ----------
    pairs : sequence of (Path, pandas.DataFrame)
        Micrograph with its coordinates (``x``, ``y`` in its frame; further
        columns, such as ``source`` naming the coordinate file, are kept).
    diameter, box, size, progress
        As in :func:`extract_micrograph`; a progress bar on stderr.

    Returns
    -------
    Particles
        ``table`` has ``micrograph`` (stem), ``path`` and the given columns.

    Raises
    ------
    FormatError
        If a micrograph cannot be read.
    InputError
        If no particle is given, a coordinate lies outside its micrograph, or
        the box is larger than a micrograph.
    """
    size = size or box
    check_pairs(pairs, diameter, box)
    tables, images = zip(*iter_particles(pairs, diameter, box, size, progress))
    return Particles(np.concatenate(images), _ordered(pd.concat(tables, ignore_index=True)), box / size)


def _new_stack(path: Path, count: int, size: int):
    """An MRC image stack of ``count`` float32 images, its data not yet written; returns it and where its data start."""
    import mrcfile

    mrc = mrcfile.new_mmap(path, (count, size, size), mrc_mode=2, overwrite=True)
    mrc.set_image_stack()
    return mrc, mrc.header.nbytes + mrc.extended_header.nbytes


def extract_to_stack(pairs, diameter: float, box: int, stack_path: str | Path, size: int | None = None,
                     star_path: str | Path | None = None, pixel_size: float | None = None,
                     optics: Optics | None = None, progress: bool = True) -> StackSummary:
    """Extract particles straight into an MRC stack, with a RELION 4 particle STAR file; both atomically.

    Each chunk of particles is written to the stack as soon as it is cut,
    so memory does not grow with the number of particles. Every
    micrograph's header is checked first; on any error neither file is left.

    Parameters
    ----------
    pairs : sequence of (Path, pandas.DataFrame)
        As :func:`extract_pairs` takes them.
    diameter, box, size
        As in :func:`extract_micrograph`.
    stack_path : str or Path
        The ``.mrcs`` stack.
    star_path : str or Path, optional
        Default: the stack's path with ``.star``. ``data_optics`` holds one
        optics group (pixel size and size of the images, the micrographs'
        pixel size, and ``optics``); ``data_particles`` holds
        ``rlnImageName`` (``N@stack``), ``rlnMicrographName``,
        ``rlnCoordinateX``, ``rlnCoordinateY`` and ``rlnOpticsGroup``; both
        paths are relative to the STAR file's folder.
    pixel_size : float, optional
        Angstrom per micrograph pixel; default: from the micrographs' MRC
        headers (:func:`resolve_pixel_size`). The stack's is scaled by the
        downsampling.
    optics : Optics, optional
    progress : bool

    Returns
    -------
    StackSummary

    Raises
    ------
    FormatError
        If a micrograph cannot be read.
    InputError
        As :func:`check_pairs`, or the headers' pixel sizes disagree.
    OutputError
        If a file cannot be written.
    """
    from deepscope.core.files import atomic_path
    from deepscope.errors import OutputError

    size = size or box
    stack_path = Path(stack_path)
    star_path = Path(star_path) if star_path else stack_path.with_suffix(".star")
    pixel_size = resolve_pixel_size(pixel_size, check_pairs(pairs, diameter, box))
    count = sum(len(coords) for _, coords in pairs)
    tables = []
    low, high, total, squares = np.inf, -np.inf, 0.0, 0.0
    try:
        # Both files are complete before either is renamed into place, so an
        # error leaves neither behind.
        with atomic_path(stack_path) as stack_tmp, atomic_path(star_path) as star_tmp:
            mrc, offset = _new_stack(stack_tmp, count, size)
            with mrc, open(stack_tmp, "r+b") as fh:
                # Plain writes, not the memory map: written pages then belong to the
                # file cache, not to this process.
                fh.seek(offset)
                for table, images in iter_particles(pairs, diameter, box, size, progress):
                    fh.write(np.ascontiguousarray(images, dtype=mrc.data.dtype).data)
                    tables.append(table[["path", "x", "y"]])
                    low, high = min(low, float(images.min())), max(high, float(images.max()))
                    total += float(images.sum(dtype=np.float64))
                    squares += float(np.square(images, dtype=np.float64).sum())
                mean = total / (count * size * size)
                mrc.header.dmin, mrc.header.dmax, mrc.header.dmean = low, high, mean
                mrc.header.rms = np.sqrt(max(squares / (count * size * size) - mean**2, 0.0))
                mrc.voxel_size = pixel_size * box / size
            write_relion_star(_particle_star(pd.concat(tables, ignore_index=True), stack_path, star_path, size,
                                             pixel_size, box / size, optics or Optics()), star_tmp)
    except OSError as exc:
        msg = f"{stack_path}: cannot write output: {exc.strerror or exc}"
        raise OutputError(msg) from None
    micrographs = sum(1 for _, coords in pairs if len(coords))
    return StackSummary(stack_path, star_path, count, micrographs, pixel_size * box / size)


def _particle_star(table, stack_path, star_path, size, pixel_size, scale, optics):
    """RELION 4's ``data_optics`` and ``data_particles`` blocks for ``table``'s particles (``path``, ``x``, ``y``)."""
    folder = star_path.parent
    optics_block = pd.DataFrame({
        "rlnOpticsGroup": [1], "rlnOpticsGroupName": ["opticsGroup1"],
        "rlnMicrographOriginalPixelSize": [pixel_size], "rlnImagePixelSize": [pixel_size * scale],
        "rlnImageSize": [size], "rlnImageDimensionality": [2],
    })
    for name, value in (("rlnVoltage", optics.voltage), ("rlnSphericalAberration", optics.spherical_aberration),
                        ("rlnAmplitudeContrast", optics.amplitude_contrast)):
        if value is not None:
            optics_block[name] = [float(value)]
    stack = relative_path(stack_path, folder)
    micrographs = {path: relative_path(path, folder) for path in table["path"].unique()}
    particles = pd.DataFrame({
        "rlnImageName": [f"{i + 1:06d}@{stack}" for i in range(len(table))],
        "rlnMicrographName": table["path"].map(micrographs).to_numpy(),
        "rlnCoordinateX": table["x"].to_numpy(dtype=np.float64),
        "rlnCoordinateY": table["y"].to_numpy(dtype=np.float64),
        "rlnOpticsGroup": 1,
    })
    return {"optics": optics_block, "particles": particles}
