"""Particle extraction (``cryoem extract``): boxes cut around picks, downsampled, normalised, written as a stack.

RELION's conventions: each particle image is a square box centred on the
pick (x = column, y = row of the micrograph as read), optionally downsampled
by Fourier cropping (no aliasing, no interpolation blur), then normalised to
zero mean and unit standard deviation outside the particle disk, so that
micrographs of different exposure are comparable. Box pixels past the
micrograph edge get the box's own mean, which normalises to 0.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.errors import InputError


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


def extract_pairs(pairs, diameter: float, box: int, size: int | None = None, progress: bool = True) -> Particles:
    """Read each micrograph and extract the particles of its coordinate table.

    Every micrograph is checked (coordinates inside it, box fits) as it is
    read, before anything is written.

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
    from deepscope.core.progress import progress_bar
    from deepscope.cryoem.io import read_micrograph

    size = size or box
    images, tables = [], []
    for micrograph, coords in progress_bar(pairs, enabled=progress, desc="extract", unit="micrograph"):
        if len(coords) == 0:
            continue
        image = read_micrograph(micrograph)
        check_box(box, diameter, image.shape, micrograph)
        check_inside(coords, image.shape, micrograph)
        images.append(extract_micrograph(image, coords, diameter, box, size))
        tables.append(coords.reset_index(drop=True).assign(micrograph=Path(micrograph).stem, path=str(micrograph)))
    if not images:
        msg = f"no particles: the coordinate files of {len(pairs)} micrograph(s) are all empty"
        raise InputError(msg)
    table = pd.concat(tables, ignore_index=True)
    first = ["micrograph", "path", "x", "y"]
    return Particles(np.concatenate(images), table[first + [c for c in table.columns if c not in first]], box / size)


def write_particle_stack(particles: Particles, stack_path, star_path=None, pixel_size: float = 1.0) -> Path:
    """Write the images as an MRC stack and a RELION particle STAR file, atomically.

    Parameters
    ----------
    particles : Particles
    stack_path : str or Path
        ``.mrcs`` file.
    star_path : str or Path, optional
        Default: the stack's path with ``.star``.
    pixel_size : float
        Angstrom per micrograph pixel (the stack's is scaled by the downsampling).

    Returns
    -------
    Path
        The STAR file. ``rlnImageName`` is ``N@<stack file name>`` (1-based,
        relative to the STAR file's directory, as RELION reads it).

    Raises
    ------
    OutputError
        If a file cannot be written.
    """
    import mrcfile
    import starfile

    from deepscope.core.files import atomic_path
    from deepscope.errors import OutputError

    stack_path = Path(stack_path)
    star_path = Path(star_path) if star_path else stack_path.with_suffix(".star")
    table = particles.table
    star = pd.DataFrame({
        "rlnImageName": [f"{i + 1:06d}@{stack_path.name}" for i in range(len(table))],
        "rlnMicrographName": table["path"].to_numpy(),
        "rlnCoordinateX": table["x"].to_numpy(dtype=np.float64),
        "rlnCoordinateY": table["y"].to_numpy(dtype=np.float64),
    })
    try:
        # Both files are complete before either is renamed into place, so an
        # error leaves neither behind.
        with atomic_path(stack_path) as stack_tmp, atomic_path(star_path) as star_tmp:
            with mrcfile.new(stack_tmp, overwrite=True) as mrc:
                mrc.set_data(particles.images.astype(np.float32))
                mrc.set_image_stack()
                mrc.voxel_size = pixel_size * particles.pixel_scale
            starfile.write({"particles": star}, star_tmp, overwrite=True)
    except OSError as exc:
        msg = f"{stack_path}: cannot write output: {exc.strerror or exc}"
        raise OutputError(msg) from None
    return star_path
