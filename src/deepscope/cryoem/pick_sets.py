"""Named sets of coordinate files, paired with micrographs by stem.

``extract`` and ``classify`` take COORDS arguments that are coordinate files
or directories. Files of one directory are one pick set (one picker), named
after the directory unless the argument says ``NAME=PATH``; a set in the
other frame says ``PATH,flip-y=HEIGHT`` (or ``NAME=PATH,flip-y=HEIGHT``).
``evaluate`` reads its picks, truth and peer sets (``NAME=DIR[,flip-y=HEIGHT]``)
here too: :func:`parse_pick_set` and :func:`load_pick_set`.
"""

from dataclasses import dataclass, field
from pathlib import Path

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
    """Group COORDS arguments into named pick sets.

    Parameters
    ----------
    specs : sequence of str
        ``[NAME=]PATH[,flip-y=HEIGHT]``; PATH is a coordinate file or a
        directory of them (not searched recursively).
    default_flip_height : int, optional
        ``--flip-y``: applies to every set that does not give its own.

    Returns
    -------
    list of PickSet
        In the order first named; files of the same directory without a
        name join one set.

    Raises
    ------
    InputError
        If a path does not exist, two different directories would get the
        same name, or a set names one micrograph twice.
    FormatError
        If a directory holds no coordinate files.
    """
    from deepscope.cryoem.io import COORDINATE_SUFFIXES, coordinate_files_by_stem

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


def pair_with_micrographs(pick_sets, micrograph_dir) -> dict:
    """Find every pick set's micrographs in a directory, by stem.

    Parameters
    ----------
    pick_sets : list of PickSet
    micrograph_dir : str or Path
        Searched recursively for MRC, TIFF, JPEG and PNG files.

    Returns
    -------
    dict of str -> Path
        Micrograph file per stem, for every stem some set has.

    Raises
    ------
    InputError
        If a coordinate file's stem names no micrograph (or the directory
        has none).
    """
    from deepscope.core.files import collect_inputs
    from deepscope.cryoem.io import MICROGRAPH_SUFFIXES
    from deepscope.cryoem.io import pair_micrographs

    micrographs = collect_inputs([micrograph_dir], MICROGRAPH_SUFFIXES)
    paired = {}
    for pick_set in pick_sets:
        for micrograph, _ in pair_micrographs(micrographs, pick_set.files, f"{pick_set.name} coordinate"):
            paired[micrograph.stem] = micrograph
    return paired


def read_pick_set(pick_set: PickSet, stems=None) -> dict:
    """Read a set's coordinate files, in the micrographs' frame.

    Parameters
    ----------
    pick_set : PickSet
    stems : iterable of str, optional
        Only these micrographs (default: all of the set).

    Returns
    -------
    dict of str -> pandas.DataFrame
        ``x``, ``y``, ``score`` and ``source`` (the file) per stem; empty
        files (a picker found nothing) give empty tables.

    Raises
    ------
    FormatError
        If a file cannot be read.
    """
    from deepscope.cryoem.io import flip_y, read_coordinates

    tables = {}
    for stem, path in sorted(pick_set.files.items()):
        if stems is not None and stem not in stems:
            continue
        table = read_coordinates(path, allow_empty=True)
        table = flip_y(table, pick_set.flip_height) if pick_set.flip_height else table
        tables[stem] = table.assign(source=str(path))
    return tables


def parse_pick_set(spec: str) -> dict:
    """Parse ``NAME=DIR[,flip-y=HEIGHT]`` into a pick-set description.

    Parameters
    ----------
    spec : str

    Returns
    -------
    dict
        ``name``, ``dir`` (Path) and ``flip_height`` (int or None).

    Raises
    ------
    InputError
        If the text does not have that form.

    Examples
    --------
    >>> parse_pick_set("topaz=peers/topaz,flip-y=4096")["flip_height"]
    4096
    """
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        msg = f"peer {spec!r}: expected NAME=DIR or NAME=DIR,flip-y=HEIGHT"
        raise InputError(msg)
    directory, _, option = rest.partition(",")
    flip_height = None
    if option:
        key, _, value = option.partition("=")
        if key != "flip-y" or not value.isdigit():
            msg = f"peer {spec!r}: the only option is flip-y=HEIGHT (micrograph height in pixels)"
            raise InputError(msg)
        flip_height = int(value)
    return {"name": name, "dir": Path(directory), "flip_height": flip_height}


def load_pick_set(directory: str | Path, flip_height: int | None = None,
                  what: str = "picks") -> dict:
    """Read every coordinate file of a directory, keyed by micrograph stem.

    Parameters
    ----------
    directory : Path
    flip_height : int, optional
        Flip y with this micrograph height (the set is in the other frame).
    what : str
        Word for error messages.

    Returns
    -------
    dict of str -> pandas.DataFrame

    Raises
    ------
    FormatError
        If the directory holds no coordinate file, or one is unreadable.
    """
    from deepscope.cryoem.io import coordinate_files_by_stem, flip_y, read_coordinates

    sets = {}
    for stem, path in coordinate_files_by_stem(directory, what).items():
        table = read_coordinates(path, allow_empty=(what != "truth"))
        sets[stem] = flip_y(table, flip_height) if flip_height else table
    return sets
