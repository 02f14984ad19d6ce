"""Batch picking and evaluation over files: what the commands run.

Kept apart from :mod:`deepscope.cryoem.task` (arrays in, tables out) because
these functions own files: inputs are validated and name-matched before any
work, outputs are written atomically, and a bad file costs only itself.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.core.files import atomic_path
from deepscope.cryoem.io import coordinate_files_by_stem, flip_y, read_coordinates, write_coordinates
from deepscope.cryoem.task import match_picks, pr_curve, summarise_counts
from deepscope.errors import BatchError, InputError, NoPicksWarning


def _to_uint8(image, low=None, high=None):
    low = np.percentile(image, 1) if low is None else low
    high = np.percentile(image, 99) if high is None else high
    return (np.clip((image - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8)


def write_overlay(image, picks, radius, path, truth=None):
    """Save a greyscale image with pick circles (and optional truth) as PNG.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    picks : pandas.DataFrame
        ``x``, ``y`` in ``image`` pixels; drawn as green circles.
    radius : float
        Circle radius in ``image`` pixels.
    path : str or Path
    truth : pandas.DataFrame, optional
        True centres, drawn as small red dots.
    """
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(_to_uint8(image)).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    # Pillow's pixel (i, j) spans [i, i+1): its centre is at +0.5
    for x, y in picks[["x", "y"]].to_numpy() + 0.5:
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=(0, 220, 0))
    if truth is not None:
        for x, y in truth[["x", "y"]].to_numpy() + 0.5:
            draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(255, 40, 40))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


class PickWriter:
    """A picker that writes each micrograph's STAR file: a batch predictor
    (see :mod:`deepscope.core.inference`).

    Parameters
    ----------
    picker : deepscope.cryoem.task.Picker
    diameter : float
        Particle diameter in micrograph pixels.
    out_dir : Path
        Existing, writable directory (shared by every Dask worker).
    threshold : float, optional
        Overrides the picker's tuned threshold.
    enhance : {"auto", "on", "off"}
    masks, overlays : bool
        Also write ``<stem>_mask.png`` / ``<stem>_overlay.png`` (working scale).
    """

    def __init__(self, picker, diameter, out_dir, threshold=None, enhance="auto", masks=False, overlays=False):
        self.picker = picker
        self.diameter = diameter
        self.out_dir = Path(out_dir)
        self.threshold = threshold
        self.enhance = enhance
        self.masks = masks
        self.overlays = overlays

    def load_input(self, path):
        """Read one micrograph at the picker's working scale."""
        from deepscope.cryoem.preprocess import load_for_picking

        return path, load_for_picking(path, self.diameter, self.picker.working_diameter, self.enhance)

    def rows(self, items):
        """Pick, write the outputs, and return ``n_picks`` and ``star`` per micrograph."""
        from PIL import Image

        rows = []
        for path, (image, scale, _shape) in items:
            picks, (particle, _regions) = self.picker.pick(image, scale, self.threshold, keep_maps=True)
            star = self.out_dir / f"{path.stem}.star"
            if len(picks) == 0:
                warnings.warn(f"{path}: no particles picked", NoPicksWarning, stacklevel=2)
            write_coordinates(picks, star)
            if self.masks:
                with atomic_path(self.out_dir / f"{path.stem}_mask.png") as tmp:
                    Image.fromarray(_to_uint8(particle, 0.0, 1.0)).save(tmp, format="PNG")
            if self.overlays:
                working = picks.assign(x=(picks["x"] + 0.5) * scale - 0.5, y=(picks["y"] + 0.5) * scale - 0.5)
                write_overlay(image, working, self.picker.working_diameter / 2,
                              self.out_dir / f"{path.stem}_overlay.png")
            rows.append({"n_picks": len(picks), "star": str(star)})
        return rows


def _check_unique_stems(stream):
    seen = {}
    for ref in stream:
        stem = Path(ref.name).stem
        if stem in seen:
            msg = f"{ref.name}: same name as {seen[stem]}; outputs are named by stem, rename one"
            raise InputError(msg)
        seen[stem] = ref.name


def pick_files(inputs, picker, diameter, out_dir, threshold=None, enhance="auto", masks=False, overlays=False,
               options=None):
    """Pick every micrograph and write ``out_dir/<stem>.star``.

    One micrograph is one partition: a run killed part-way and restarted
    with the same arguments picks only the micrographs it had not finished.

    Parameters
    ----------
    inputs : sequence of str or Path
        Micrographs, directories and uncompressed ``.tar`` shards; stems
        must be unique (they name the outputs).
    picker : deepscope.cryoem.task.Picker
    diameter : float
        Particle diameter in micrograph pixels.
    out_dir : Path
        Writable directory (created if needed).
    threshold : float, optional
        Overrides the picker's tuned threshold.
    enhance : {"auto", "on", "off"}
    masks, overlays : bool
        Also write ``<stem>_mask.png`` / ``<stem>_overlay.png`` (working scale).
    options : BatchOptions, optional
        Inputs, read threads and cluster (on an existing cluster the workers
        must see ``out_dir`` at the same path); one micrograph per partition.

    Returns
    -------
    rows : list of dict
        ``file``, ``n_picks``, ``star`` per good micrograph.
    failures : list of (str, str)

    Raises
    ------
    InputError
        If two inputs share a stem.
    """
    import dataclasses

    from deepscope.core.files import check_writable
    from deepscope.core.inference import describe_job, run_batch
    from deepscope.core.options import BatchOptions
    from deepscope.core.parts import PartStore
    from deepscope.core.sources import InputStream
    from deepscope.cryoem.io import MICROGRAPH_SUFFIXES

    # One micrograph is a partition and a batch: a kill loses at most one.
    options = dataclasses.replace(options or BatchOptions(), partition_size=1, batch_size=1)
    options.check()
    stream = InputStream(inputs, MICROGRAPH_SUFFIXES, options.catalog, options.path_column)
    _check_unique_stems(stream)
    out_dir = check_writable(out_dir, is_dir=True)
    job = describe_job("cryoem pick", stream, picker.checkpoint, 1, diameter=diameter, threshold=threshold,
                       enhance=enhance, masks=masks, overlays=overlays, augment=picker.augment)
    # The STAR files are the results; the parts only record which are done.
    store = PartStore(out_dir / ".deepscope-pick", job, keep=False)
    writer = PickWriter(picker, diameter, out_dir, threshold, enhance, masks, overlays)
    failures = run_batch(stream, writer, store, options, desc="pick")
    rows = [row for table in store.iter_tables() for row in table.to_dict("records")]
    store.finish()
    return rows, failures


def parse_pick_set(spec):
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


def load_pick_set(directory, flip_height=None, what="picks"):
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
    """
    sets = {}
    for stem, path in coordinate_files_by_stem(directory, what).items():
        table = read_coordinates(path, allow_empty=(what != "truth"))
        sets[stem] = flip_y(table, flip_height) if flip_height else table
    return sets


def evaluate_pick_sets(picks, truth, diameter, peers=(), threshold=None, thresholds=None):
    """Score our picks and peer pick sets against the truth.

    Parameters
    ----------
    picks : dict of str -> DataFrame
        Our picks by micrograph stem (with ``score``).
    truth : dict of str -> DataFrame
    diameter : float
        Particle diameter; matches lie within half of it.
    peers : list of (str, dict of str -> DataFrame)
        Named peer pick sets, already in the truth's frame.
    threshold : float, optional
        Keep only our picks scoring at least this.
    thresholds : sequence of float, optional
        Thresholds of the precision-recall curve of our picks.

    Returns
    -------
    dict
        ``summary`` (one row per picker, pooled over the micrographs that
        every picker and the truth share), ``per_micrograph`` (every
        picker, every micrograph it has), ``curve`` (our precision-recall
        curve on the shared micrographs), ``shared`` (their stems) and
        ``unmatched`` (our pick files with no truth).

    Raises
    ------
    InputError
        If none of our pick files has a truth file, or no micrograph is
        shared by every picker.
    """
    radius = diameter / 2
    unmatched = sorted(set(picks) - set(truth))
    ours = {s: t for s, t in picks.items() if s in truth}
    if not ours:
        msg = "no pick file has a truth file with the same micrograph name"
        raise InputError(msg)
    if threshold is not None:
        ours = {s: t[t["score"].fillna(np.inf) >= threshold] for s, t in ours.items()}
    all_sets = [("deepscope", ours)] + list(peers)
    shared = sorted(set(ours).intersection(*(set(p) for _, p in peers)))
    if not shared:
        msg = "no micrograph has picks from every picker and a truth file; check the peer directories"
        raise InputError(msg)
    per_rows, summary_rows = [], []
    for name, sets in all_sets:
        counts = np.zeros(3, dtype=int)
        for stem in sorted(set(sets) & set(truth)):
            result = match_picks(sets[stem], truth[stem], radius)
            per_rows.append({"picker": name, "micrograph": stem, "n_picks": len(sets[stem]),
                             "n_true": len(truth[stem]), "precision": result["precision"],
                             "recall": result["recall"], "f1": result["f1"]})
            if stem in shared:
                counts += [result["tp"], result["fp"], result["fn"]]
        summary_rows.append({"picker": name, "micrographs": len(shared), **summarise_counts(*counts)})
    if thresholds is None:
        thresholds = np.round(np.arange(0.05, 1.0, 0.05), 2)
    scored = [ours[s].fillna({"score": 1.0}) for s in shared]
    curve = pr_curve(scored, [truth[s] for s in shared], radius, thresholds)
    return {"summary": pd.DataFrame(summary_rows), "per_micrograph": pd.DataFrame(per_rows),
            "curve": curve, "shared": shared, "unmatched": unmatched}


def raise_for_unmatched(unmatched, picks_dir):
    """Raise a :class:`BatchError` naming the pick files without truth, if any."""
    if unmatched:
        files = coordinate_files_by_stem(picks_dir, "picks")
        raise BatchError([(str(files[s]), "no truth file for this micrograph") for s in unmatched])


def pr_figure(curve):
    """Precision-recall curve of our picks over the score threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.0), layout="constrained")
    ax.plot(curve["recall"], curve["precision"], marker=".")
    best = curve.loc[curve["f1"].idxmax()]
    ax.scatter([best["recall"]], [best["precision"]], color="red", zorder=3,
               label=f"best F1 {best['f1']:.3f} at {best['threshold']:.2f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title="picks vs threshold")
    ax.legend(loc="lower left")
    return fig


def write_evaluation_report(result, out_dir, picks, truth, diameter, micrograph_dir=None, max_overlays=6):
    """Write the evaluation's HTML report, with overlays when micrographs are given.

    Parameters
    ----------
    result : dict
        From :func:`evaluate_pick_sets`.
    out_dir : Path
    picks, truth : dict of str -> DataFrame
        Our picks and the truth, by stem.
    diameter : float
    micrograph_dir : Path, optional
        Where ``<stem>.*`` micrographs are, for overlay images.
    max_overlays : int

    Returns
    -------
    Path
        The report file.
    """
    from deepscope.core.files import collect_inputs
    from deepscope.core.report import Report
    from deepscope.cryoem.io import MICROGRAPH_SUFFIXES
    from deepscope.cryoem.preprocess import load_for_picking

    report = Report(out_dir, "Particle picking evaluation")
    report.text(f"One-to-one matching within {diameter / 2:g} px (half the particle diameter), pooled "
                f"over the {len(result['shared'])} micrographs every picker covers: "
                f"{', '.join(result['shared'])}.")
    report.table(result["summary"].set_index("picker"), caption="precision / recall / F1")
    report.figure(pr_figure(result["curve"]), "pr_curve", "deepscope precision-recall over the threshold")
    report.table(result["per_micrograph"], caption="per micrograph", index=False)
    if micrograph_dir is not None:
        files = {p.stem: p for p in collect_inputs([micrograph_dir], MICROGRAPH_SUFFIXES)}
        report.heading("Overlays (green: deepscope picks, red: truth)")
        for stem in [s for s in result["shared"] if s in files][:max_overlays]:
            # overlays at a particle size of 16 px keep the PNGs small
            image, scale, _ = load_for_picking(files[stem], diameter, 16.0, "off")
            working = {k: t.assign(x=(t["x"] + 0.5) * scale - 0.5, y=(t["y"] + 0.5) * scale - 0.5)
                       for k, t in (("p", picks[stem]), ("t", truth[stem]))}
            name = f"overlay_{stem}.png"
            write_overlay(image, working["p"], 8.0, Path(out_dir) / name, truth=working["t"])
            report.image(name, stem)
    return report.write()
