"""``cryoem classify`` on files: pick sets in, class averages and junk accounting out.

The particles of every pick set are classified together, so one set of
classes judges every picker; each pick then counts as junk when its class
is junk or when, alone, it matches the particle classes no better than
background does (:mod:`~deepscope.cryoem.classify2d.background`), and the
accounting reports, per picker, the fraction of its picks called junk
beside (with a truth set) the fraction that matches no true particle.
Outputs are staged in a hidden directory and moved into place at the end,
so an error leaves nothing half-written.
"""

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.cryoem.classify2d.background import BACKGROUND_QUANTILE
from deepscope.errors import OutputError

# Box side over particle diameter: room for the background ring that the
# normalisation needs and for the small shifts searched by alignment.
BOX_FACTOR = 1.5
# Side of the classified images: at 64 px the averages of 10017 show their views, and planted background picks
# are told from particles better than at 48 (benchmarks/bench_cryoem_planted.py --split calibration).
IMAGE_SIZE = 64


@dataclass
class ClassifyResult:
    """Everything ``classify`` writes.

    Attributes
    ----------
    averages : numpy.ndarray
        ``(k, size, size)`` class averages, largest class first.
    classes : pandas.DataFrame
        ``class`` (1 = largest), ``n``, ``junk`` (0/1), ``score`` and its measures.
    particles : pandas.DataFrame
        One row per input coordinate: ``micrograph``, ``x``, ``y``, ``class``, ``junk``, ``picker``,
        ``match`` (correlation with the other half-set's particle classes; NaN where not measured).
    accounting : pandas.DataFrame
        One row per picker (see :func:`junk_accounting`).
    micrographs : list of str
        Stems the accounting is pooled over.
    settings : dict
        What was run, for the report.
    """

    averages: np.ndarray
    classes: pd.DataFrame
    particles: pd.DataFrame
    accounting: pd.DataFrame
    micrographs: list
    settings: dict


def check_output_dir(path) -> Path:
    """Fail early if ``path`` cannot become the output directory, creating nothing (unlike ``check_writable``).

    Raises
    ------
    OutputError
        If it is a file, or its nearest existing parent is not a writable directory.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        msg = f"{path}: cannot write output: it is a file"
        raise OutputError(msg)
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        msg = f"{path}: cannot write output: {existing} is not a writable directory"
        raise OutputError(msg)
    return path


def classify_pick_sets(pick_sets, micrograph_dir, diameter: float, n_classes: int | None = None,
                       box: int | None = None, size: int = IMAGE_SIZE, iterations: int = 6, truth=None,
                       background_quantile: float = BACKGROUND_QUANTILE, device: str = "cpu", seed: int = 0,
                       progress: bool = True) -> ClassifyResult:
    """Extract, classify and account for the picks of several pick sets.

    A pick is junk when its class is junk
    (:mod:`~deepscope.cryoem.classify2d.junk`) or when it matches the particle
    classes no better than ``background_quantile`` of background boxes from
    the same micrographs (:mod:`~deepscope.cryoem.classify2d.background`).

    Parameters
    ----------
    pick_sets : list of deepscope.cryoem.pick_sets.PickSet
    micrograph_dir : str, Path or list of them
        Micrographs (a directory, or a list of files and directories), matched to coordinate files by stem.
    diameter : float
        Particle diameter in micrograph pixels.
    n_classes : int, optional
        Default :func:`~deepscope.cryoem.classify2d.clustering.default_class_count`.
    box : int, optional
        Box in micrograph pixels; default ``BOX_FACTOR`` x the diameter.
    size, iterations, seed : int
        Side of the classified particle images; alignment rounds; seed.
    truth : deepscope.cryoem.pick_sets.PickSet, optional
        True particle centres, for the truth-matched false-pick fraction.
    background_quantile : float
        0 judges picks by their class alone.
    device : str
        ``cpu``, ``cuda`` or ``cuda:N``.
    progress : bool

    Returns
    -------
    ClassifyResult

    Raises
    ------
    InputError
        Mismatched stems, coordinates outside a micrograph, no particles, a
        box larger than a micrograph, or a CUDA device that is not there.
    FormatError
        An unreadable micrograph or coordinate file.
    """
    from deepscope.core.distributed import select_device
    from deepscope.cryoem.classify2d.background import background_tables, background_test
    from deepscope.cryoem.classify2d.clustering import classify_images, default_class_count
    from deepscope.cryoem.classify2d.junk import class_table
    from deepscope.cryoem.extract import extract_pairs
    from deepscope.cryoem.pick_sets import pair_with_micrographs, read_pick_set

    torch_device = select_device(device)
    box = box or int(round(BOX_FACTOR * diameter / 2)) * 2
    micrographs = pair_with_micrographs(pick_sets, micrograph_dir)
    tables = {s.name: read_pick_set(s) for s in pick_sets}
    truth_tables = read_pick_set(truth, set(micrographs)) if truth is not None else {}
    pairs = []
    for stem in sorted(micrographs):
        parts = [t[stem][["x", "y", "source"]].assign(picker=name) for name, t in tables.items() if stem in t]
        pairs.append((micrographs[stem], pd.concat(parts, ignore_index=True)))
    rng = np.random.default_rng(seed)
    backgrounds = background_tables(pairs, diameter, box, rng, count=0 if background_quantile <= 0 else None)
    # picks and background boxes are cut in one pass over the micrographs
    both = [(path, pd.concat([picks.assign(background=False), extra.assign(background=True)], ignore_index=True))
            for (path, picks), (_, extra) in zip(pairs, backgrounds)]
    cut = extract_pairs(both, diameter, box, min(size, box), progress=progress)
    is_background = cut.table["background"].to_numpy(dtype=bool)
    images = cut.images[~is_background]
    picks = cut.table[~is_background].drop(columns="background").reset_index(drop=True)
    radius = diameter / 2 / cut.pixel_scale
    k = n_classes or default_class_count(len(images))
    classes = classify_images(images, k, radius, iterations=iterations, seed=seed, device=torch_device,
                              progress=progress)
    order, table = class_table(classes, radius)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    assigned = rank[classes.labels]
    junk = table["junk"].to_numpy()[assigned].astype(bool)
    particle_classes = np.zeros(len(order), dtype=bool)
    particle_classes[order] = table["junk"].to_numpy() == 0
    match, like_background, background_note = background_test(images, cut.images[is_background], classes,
                                                               particle_classes, radius, background_quantile,
                                                               rng, torch_device)
    junk |= like_background
    rows = picks.assign(**{"class": assigned + 1, "junk": junk.astype(int), "match": match})
    rows = rows[["micrograph", "x", "y", "class", "junk", "picker", "match"]]
    shared = _shared_micrographs(tables, micrographs)
    accounting = junk_accounting(rows, truth_tables, shared, [s.name for s in pick_sets], diameter)
    settings = {"diameter (px)": diameter, "box (px)": box, "image size (px)": images.shape[-1],
                "classes asked for": k, "alignment rounds": iterations, "background quantile": background_quantile,
                "background test": background_note, "seed": seed, "device": str(torch_device)}
    return ClassifyResult(classes.averages[order], table, rows, accounting, shared, settings)


def _shared_micrographs(tables, micrographs):
    """Stems every pick set has (so pickers are compared on the same data); all stems if none is shared."""
    shared = set(micrographs)
    for per_stem in tables.values():
        shared &= set(per_stem)
    return sorted(shared) if shared else sorted(micrographs)


def junk_accounting(particles: pd.DataFrame, truth: dict, stems, pickers, diameter: float) -> pd.DataFrame:
    """Per picker: the fraction of picks in junk classes, and of picks matching no true particle.

    Parameters
    ----------
    particles : pandas.DataFrame
        ``micrograph``, ``x``, ``y``, ``junk``, ``picker``.
    truth : dict of str -> pandas.DataFrame
        True centres per stem (may be empty).
    stems, pickers : sequence of str
        Micrographs to pool over; pickers in row order.
    diameter : float
        Picks match true particles one-to-one within half of it.

    Returns
    -------
    pandas.DataFrame
        ``picker``, ``micrographs``, ``picks``, ``junk_picks``,
        ``junk_fraction`` and ``false_pick_fraction`` (picks matching no
        true particle, on the micrographs with truth; NaN without truth).

    Examples
    --------
    >>> rows = pd.DataFrame({"micrograph": "m", "x": [10.0, 50.0], "y": [10.0, 50.0], "junk": [0, 1],
    ...                      "picker": "a"})
    >>> truth = {"m": pd.DataFrame({"x": [11.0], "y": [10.0]})}
    >>> junk_accounting(rows, truth, ["m"], ["a"], 10)[["junk_fraction", "false_pick_fraction"]].values.tolist()
    [[0.5, 0.5]]
    """
    from deepscope.cryoem.evaluate import match_picks

    result = []
    for picker in pickers:
        mine = particles[(particles["picker"] == picker) & particles["micrograph"].isin(stems)]
        false, judged = 0, 0
        for stem, picks in mine.groupby("micrograph"):
            if stem in truth:
                false += match_picks(picks, truth[stem], diameter / 2)["fp"]
                judged += len(picks)
        result.append({
            "picker": picker, "micrographs": mine["micrograph"].nunique(), "picks": len(mine),
            "junk_picks": int(mine["junk"].sum()),
            "junk_fraction": float(mine["junk"].mean()) if len(mine) else np.nan,
            "false_pick_fraction": false / judged if judged else np.nan,
        })
    return pd.DataFrame(result)


def write_classify_outputs(result: ClassifyResult, out_dir, pixel_size: float = 1.0) -> Path:
    """Write the averages, montage, tables and report into ``out_dir``, all or nothing.

    ``out_dir`` is created if needed (files of an earlier run are replaced);
    ``pixel_size`` (Angstrom per pixel of the averages) goes in the MRC header.
    Returns the report's path.

    Raises
    ------
    OutputError
        If the directory or a file cannot be written.
    """
    import mrcfile

    from deepscope.core.files import write_table
    from deepscope.cryoem.classify2d.report import write_montage, write_report

    out_dir = check_output_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".classify-"))
    except OSError as exc:
        msg = f"{out_dir}: cannot write output: {exc.strerror or exc}"
        raise OutputError(msg) from None
    try:
        with mrcfile.new(stage / "class_averages.mrcs", overwrite=True) as mrc:
            mrc.set_data(result.averages.astype(np.float32))
            mrc.set_image_stack()
            mrc.voxel_size = pixel_size
        write_montage(result.averages, result.classes, stage / "class_averages.png")
        write_table(result.classes[["class", "n", "junk", "score"]], stage / "classes.csv")
        write_table(result.particles, stage / "particles.csv")
        write_table(result.accounting, stage / "junk_by_picker.csv")
        write_report(result, stage)
        for path in sorted(stage.iterdir()):
            os.replace(path, out_dir / path.name)
    except OSError as exc:
        msg = f"{out_dir}: cannot write output: {exc.strerror or exc}"
        raise OutputError(msg) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out_dir / "report.html"
