"""Pick sets: the coordinate files of one picker, named, in the micrographs' frame.

Commands that compare pickers (``evaluate``, ``extract``, ``classify``) name
a set as ``[NAME=]PATH[,flip-y=HEIGHT]``: PATH is a coordinate file or a
directory of them (one picker), NAME defaults to the directory's name, and
``flip-y`` flips a set stored upside down.
"""

from dataclasses import dataclass, field
from pathlib import Path

from deepscope.cryoem.coordinates import COORDINATE_SUFFIXES, coordinate_files_by_stem, flip_y, read_coordinates
from deepscope.errors import InputError


@dataclass
class PickSet:
    """Coordinate files of one picker.

    Attributes
    ----------
    name : str
        Shown in tables (``crYOLO``, ``truth`` ...).
    files : dict of str -> Path
        Coordinate file per micrograph stem.
    flip_height : int or None
        The files are upside down in micrographs this tall.
    """

    name: str
    files: dict = field(default_factory=dict)
    flip_height: int | None = None


def parse_spec(spec: str) -> tuple[str | None, Path, int | None]:
    """Split ``[NAME=]PATH[,flip-y=HEIGHT]`` into its parts.

    Parameters
    ----------
    spec : str

    Returns
    -------
    name : str or None
    path : Path
    flip_height : int or None

    Raises
    ------
    InputError
        If the option after the comma is not ``flip-y=HEIGHT``.

    Examples
    --------
    >>> parse_spec("picks/topaz,flip-y=4096")
    (None, PosixPath('picks/topaz'), 4096)
    >>> parse_spec("Topaz=picks/topaz")
    ('Topaz', PosixPath('picks/topaz'), None)
    """
    if Path(spec).exists():  # a path that happens to contain '=' or ','
        return None, Path(spec), None
    rest, _, option = spec.partition(",flip-y=") if ",flip-y=" in spec else (spec, "", "")
    if "," in rest or (",flip-y=" in spec and not option.isdigit()):
        msg = f"{spec!r}: expected [NAME=]PATH or [NAME=]PATH,flip-y=HEIGHT (micrograph height in pixels)"
        raise InputError(msg)
    name, sep, path = rest.partition("=")
    if not sep:
        name, path = None, rest
    elif not name or not path:
        msg = f"{spec!r}: expected NAME=PATH with a name and a path"
        raise InputError(msg)
    return name, Path(path), int(option) if option else None


def gather_pick_sets(specs, default_flip_height: int | None = None) -> list[PickSet]:
    """Group ``[NAME=]PATH[,flip-y=HEIGHT]`` arguments into named pick sets.

    Parameters
    ----------
    specs : sequence of str
        PATH is a coordinate file or a directory of them (not searched recursively).
    default_flip_height : int, optional
        ``--flip-y``: for every set that does not give its own.

    Returns
    -------
    list of PickSet
        In the order first named; unnamed files of one directory join one set.

    Raises
    ------
    InputError
        If a path does not exist, two directories would get the same name,
        or a set names one micrograph twice.
    FormatError
        If a directory holds no coordinate files.
    """
    sets: dict[str, PickSet] = {}
    sources: dict[str, Path] = {}
    for spec in specs:
        name, path, flip_height = parse_spec(spec)
        if path.is_dir():
            files, source = coordinate_files_by_stem(path, "coordinate"), path
        elif path.is_file():
            if path.suffix.lower() not in COORDINATE_SUFFIXES:
                msg = f"{path}: not a coordinate file ({', '.join(COORDINATE_SUFFIXES)})"
                raise InputError(msg)
            files, source = {path.stem: path}, path.parent
        else:
            msg = f"{path}: no such coordinate file or directory"
            raise InputError(msg)
        if name is None:
            name = source.resolve().name
            if sources.get(name, source.resolve()) != source.resolve():
                msg = f"{source} and {sources[name]}: two pick sets would be called {name!r}; name them NAME=PATH"
                raise InputError(msg)
        # an explicit NAME may gather several paths into one set on purpose
        sources.setdefault(name, source.resolve())
        pick_set = sets.setdefault(name, PickSet(name, {}, flip_height or default_flip_height))
        for stem, file in files.items():
            if stem in pick_set.files and pick_set.files[stem] != file:
                msg = f"{file}: pick set {name!r} already has {pick_set.files[stem]} for micrograph {stem!r}"
                raise InputError(msg)
            pick_set.files[stem] = file
    return list(sets.values())


def pair_with_micrographs(pick_sets: list[PickSet], micrograph_dir: str | Path | list) -> dict:
    """Find every pick set's micrographs, by stem, in a directory (searched recursively) or files and directories.

    Returns
    -------
    dict of str -> Path
        Micrograph file per stem, for every stem some set has.

    Raises
    ------
    InputError
        If a coordinate file's stem names no micrograph (or the directory has none).
    """
    from deepscope.core.files import collect_inputs
    from deepscope.cryoem.io import MICROGRAPH_SUFFIXES, pair_micrographs

    given = micrograph_dir if isinstance(micrograph_dir, (list, tuple)) else [micrograph_dir]
    micrographs = collect_inputs(given, MICROGRAPH_SUFFIXES)
    paired = {}
    for pick_set in pick_sets:
        for micrograph, _ in pair_micrographs(micrographs, pick_set.files, f"{pick_set.name} coordinate"):
            paired[micrograph.stem] = micrograph
    return paired


def read_pick_set(pick_set: PickSet, stems=None, allow_empty: bool = True) -> dict:
    """Read a set's coordinate files, in the micrographs' frame.

    Parameters
    ----------
    pick_set : PickSet
    stems : iterable of str, optional
        Only these micrographs (default: all of the set).
    allow_empty : bool
        Accept files without coordinates (a picker may find nothing).

    Returns
    -------
    dict of str -> pandas.DataFrame
        ``x``, ``y``, ``score`` and ``source`` (the file) per stem.

    Raises
    ------
    FormatError
        If a file cannot be read.
    """
    tables = {}
    for stem, path in sorted(pick_set.files.items()):
        if stems is None or stem in stems:
            table = read_coordinates(path, allow_empty=allow_empty)
            table = flip_y(table, pick_set.flip_height) if pick_set.flip_height else table
            tables[stem] = table.assign(source=str(path))
    return tables


def load_pick_set(directory: str | Path, flip_height: int | None = None, what: str = "picks") -> dict:
    """Read every coordinate file of a directory, keyed by micrograph stem (:func:`read_pick_set`).

    ``what`` names the set in error messages; a ``"truth"`` set may not
    have empty files.

    Raises
    ------
    FormatError
        If the directory holds no coordinate file, or one is unreadable.
    """
    files = coordinate_files_by_stem(directory, what)
    return read_pick_set(PickSet(what, files, flip_height), allow_empty=what != "truth")
