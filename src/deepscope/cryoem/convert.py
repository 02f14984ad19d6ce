"""Coordinate files converted to another format and frame (``cryoem convert``), a directory at a time.

The formats themselves are :mod:`deepscope.cryoem.coordinates`; this module
pairs coordinate files with their micrographs when a format (cryoSPARC's
``.cs``) stores the micrograph's path, shape and pixel size.
"""

from pathlib import Path

from deepscope.core.files import check_writable, collect_inputs
from deepscope.cryoem.coordinates import (COORDINATE_SUFFIXES, check_coordinate_directory, flip_y, read_coordinates,
                                          write_coordinates)
from deepscope.cryoem.io import MICROGRAPH_SUFFIXES, pair_micrographs, read_micrograph_header
from deepscope.errors import DeepscopeError, InputError


def convert_coordinate_files(inputs, out_dir: str | Path, to: str, flip_height: int | None = None,
                             box_size: float | None = None, shape: tuple[int, int] | None = None,
                             micrograph_dir: str | Path | None = None) -> tuple[list[dict], list[tuple[str, str]]]:
    """Convert coordinate files to another format (and frame): ``cryoem convert``.

    Parameters
    ----------
    inputs : sequence of str or Path
        Coordinate files or directories of them.
    out_dir : str or Path
        Receives ``<stem>.<to>`` (created if needed).
    to : {"star", "box", "csv", "cs"}
    flip_height : int, optional
        Flip y with this micrograph height (:func:`flip_y`).
    box_size, shape
        As :func:`write_coordinates` needs them for ``box`` / ``csv`` and ``cs``.
    micrograph_dir : str or Path, optional
        ``cs`` only: the micrographs (searched recursively, paired by stem),
        whose paths, shapes (unless ``shape`` is given) and MRC pixel sizes
        go into the ``.cs`` files.

    Returns
    -------
    rows : list of dict
        ``file``, ``n_particles``, ``out`` per converted file.
    failures : list of (str, str)
        Files that could not be read or written, with the reason.

    Raises
    ------
    InputError
        If a size the output format needs is missing, no input is found, or
        a coordinate file has no micrograph in ``micrograph_dir``.
    OutputError
        If ``out_dir`` is named like a coordinate file or cannot be written.
    """
    if to in ("box", "csv") and box_size is None:
        msg = f"--to {to} needs --box-size (the particle box / diameter in pixels)"
        raise InputError(msg)
    if to == "cs" and shape is None and micrograph_dir is None:
        msg = "--to cs needs --shape ROWS COLS or --micrographs DIR (cryoSPARC stores fractions of the micrograph)"
        raise InputError(msg)
    paths = collect_inputs(inputs, COORDINATE_SUFFIXES)
    micrographs = {}
    if to == "cs" and micrograph_dir is not None:
        found = collect_inputs([micrograph_dir], MICROGRAPH_SUFFIXES)
        micrographs = {m.stem: m for m, _ in pair_micrographs(found, {p.stem: p for p in paths})}
    check_coordinate_directory(out_dir)
    out_dir = check_writable(out_dir, is_dir=True)
    rows, failures = [], []
    for path in paths:
        try:
            table = read_coordinates(path, allow_empty=True)
            if flip_height:
                table = flip_y(table, flip_height)
            target = out_dir / f"{path.stem}.{to}"
            micrograph, size, pixel_size = micrographs.get(path.stem), shape, None
            if micrograph is not None:
                header_shape, pixel_size = read_micrograph_header(micrograph)
                size = shape or header_shape
            write_coordinates(table, target, box_size=box_size, shape=size, micrograph=micrograph,
                              pixel_size=pixel_size)
        except DeepscopeError as exc:
            failures.append((str(path), str(exc)))
            continue
        rows.append({"file": str(path), "n_particles": len(table), "out": str(target)})
    return rows, failures
