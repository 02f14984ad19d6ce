"""Adapt a picker to new micrographs without labels: pick, keep what 2D classification calls particles, fine-tune.

:func:`selftrain` is ``cryoem selftrain``. Round 0 picks with the starting
picker (or, for ``init="blob"``, a Laplacian-of-Gaussian blob detector at the
particle size, :func:`~deepscope.cryoem.picking.blob_picks`, the weights then
being :data:`GENERAL_PICKER`'s); every round picks generously (at ``candidates`` times its picker's
own threshold), classifies the picks in 2D
(:func:`~deepscope.cryoem.classify2d.run.classify_pick_sets`), keeps the picks
it does not call junk (not in a junk class, and a better match to the particle
classes than background) as labels, fine-tunes the starting picker on
them (:func:`~deepscope.cryoem.train.train_picker` with ``init``, always from
the starting weights, so errors of one round are not compounded into the
next) and picks again. It stops after ``rounds`` trained rounds, or earlier
when a round no longer changes what the next would learn
(:func:`should_stop`): its kept set grew by less than ``min_growth``, or it
matches the previous round's kept set to F1 ``agreement`` or more (the next
round would train on nearly the same labels as this one did). The final picker is the trained round with the
most kept particles; it is copied to ``RUN_DIR/best.pt``, so ``cryoem pick
--model RUN_DIR`` uses it.

Run directory::

    config.yaml                 settings (a rerun with the same ones resumes or returns, others are refused)
    round_<r>/picks/            <stem>.star of the round's picker (round 0: the starting one)
    round_<r>/classes/          classify's outputs: class_averages.png, classes.csv, particles.csv, report.html
    round_<r>/labels/           <stem>.star: the kept picks, what round r + 1 trains on
    round_<r>/model/            round r's fine-tuning run (r >= 1): best.pt, history
    rounds.csv, report.html     one row per round: picks, kept share, classes kept, agreement (kept sets), seconds
    best.pt                     the final picker
"""

import dataclasses
import json
import logging
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.core.files import atomic_path, write_table
from deepscope.errors import DiameterWarning, InputError, NoPicksWarning

log = logging.getLogger(__name__)

ROUND_RECORD = "round.json"
# --init value that starts from a blob detector's picks (and GENERAL_PICKER's weights)
BLOB = "blob"
# Where selftrain starts unless told: the shipped picker trained to find proteins it never saw
# (docs/cryoem.md: from it, ribosome recall 0.955 without labels; from the beta-galactosidase
# specialist, 0.769)
GENERAL_PICKER = "cryoem_general"


@dataclasses.dataclass(frozen=True)
class SelftrainOptions:
    """How :func:`selftrain` picks, classifies and fine-tunes."""

    rounds: int = 3  # most fine-tuning rounds after the starting picker's round 0
    epochs: int = 3  # fine-tuning epochs per round (from the starting weights each time)
    patches: int = 256  # training patches per epoch
    batch_size: int = 16
    lr: float = 2e-3  # what `cryoem train --init` fine-tunes with by default
    seed: int = 0
    min_growth: float = 0.05  # stop when the kept set grows by less than this share ...
    agreement: float = 0.95  # ... or matches the previous kept set to this F1
    # Candidates are picked at this fraction of each round's picker's own threshold: more of the particles
    # it is unsure of, for 2D classification to sort (the cryoSPARC route: over-pick, keep the good classes).
    candidates: float = 0.5
    threshold: float | None = None  # a fixed pick score cut for every round instead
    n_classes: int | None = None  # 2D classes per round (default: classify's, by particle count)
    enhance: str = "auto"
    device: str = "cpu"
    threads: int | None = 1  # torch threads (None: torch's default)

    def check(self) -> None:
        """Refuse settings that cannot run.

        Raises
        ------
        InputError
            If a count is below 1 or a share outside its range.

        Examples
        --------
        >>> SelftrainOptions(rounds=0).check()
        Traceback (most recent call last):
        ...
        deepscope.errors.InputError: --rounds must be at least 1, got 0
        """
        for option, value in (("--rounds", self.rounds), ("--epochs", self.epochs), ("--patches", self.patches),
                              ("--batch-size", self.batch_size)):
            if value < 1:
                msg = f"{option} must be at least 1, got {value}"
                raise InputError(msg)
        if not 0 < self.candidates <= 1:
            msg = f"--candidates must be above 0 and at most 1, got {self.candidates}"
            raise InputError(msg)
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            msg = f"--threshold must be between 0 and 1, got {self.threshold}"
            raise InputError(msg)
        if self.lr < 0:
            msg = f"--lr must not be negative, got {self.lr}"
            raise InputError(msg)


@dataclasses.dataclass
class SelftrainResult:
    """What :func:`selftrain` did: ``rounds`` (one row per round), the ``final_round`` and ``run_dir``."""

    rounds: pd.DataFrame
    final_round: int
    run_dir: Path


def should_stop(rounds: list[dict], min_growth: float, agreement: float) -> bool:
    """The label-free stopping rule: the last round's kept set hardly grew, or it equals the previous one.

    Parameters
    ----------
    rounds : list of dict
        Rows with ``kept`` and ``agreement`` (F1 of the round's kept picks against the previous round's), round 0
        first.
    min_growth, agreement : float
        See :class:`SelftrainOptions`.

    Examples
    --------
    >>> rows = [{"kept": 100, "agreement": np.nan}, {"kept": 130, "agreement": 0.8}]
    >>> should_stop(rows, 0.05, 0.95), should_stop(rows + [{"kept": 133, "agreement": 0.9}], 0.05, 0.95)
    (False, True)
    >>> should_stop(rows + [{"kept": 200, "agreement": 0.96}], 0.05, 0.95)
    True
    """
    if len(rounds) < 2:
        return False
    last, before = rounds[-1], rounds[-2]
    return last["kept"] < (1 + min_growth) * before["kept"] or last["agreement"] >= agreement


def picks_agreement(picks: dict, previous: dict, diameter: float) -> float:
    """F1 of one set of picks against another, matched one-to-one within half a diameter, pooled over micrographs.

    Examples
    --------
    >>> a = {"m": pd.DataFrame({"x": [10.0, 50.0], "y": [10.0, 50.0]})}
    >>> b = {"m": pd.DataFrame({"x": [11.0], "y": [10.0]})}
    >>> picks_agreement(a, b, 10)
    0.666666666667
    """
    from deepscope.cryoem.evaluate import match_picks, summarise_counts

    counts = np.zeros(3, dtype=int)
    for stem in sorted(set(picks) | set(previous)):
        empty = pd.DataFrame({"x": [], "y": []})
        result = match_picks(picks.get(stem, empty), previous.get(stem, empty), diameter / 2)
        counts += [result["tp"], result["fp"], result["fn"]]
    return float(summarise_counts(*counts)["f1"])


def _check_micrographs(micrographs: list[Path]) -> None:
    """Every micrograph's header is readable, stems are unique and there are two or more (one validates)."""
    from deepscope.cryoem.io import read_micrograph_header
    from deepscope.cryoem.predictor import check_unique_stems

    check_unique_stems(str(path) for path in micrographs)
    for path in micrographs:
        read_micrograph_header(path)
    if len(micrographs) < 2:
        msg = (f"selftrain needs at least 2 micrographs (one validates each round's fine-tuning), "
               f"got {len(micrographs)}")
        raise InputError(msg)


def _pick(picker, micrographs, diameter, out_dir, options, progress) -> dict:
    """Pick every micrograph into ``out_dir``; the picks per stem. Any micrograph that fails is an error."""
    from deepscope.core.batch.options import BatchOptions
    from deepscope.cryoem.predictor import pick_files

    batch = BatchOptions(threads=options.threads, device=options.device, progress=progress)
    with warnings.catch_warnings():
        # the diameter was checked once, before round 0; a micrograph without picks is counted, not warned about
        warnings.simplefilter("ignore", DiameterWarning)
        warnings.simplefilter("ignore", NoPicksWarning)
        threshold = options.threshold if options.threshold is not None else options.candidates * picker.threshold
        _, failures = pick_files(micrographs, picker, diameter, out_dir, threshold=threshold,
                                 enhance=options.enhance, options=batch)
    if failures:
        file, reason = failures[0]
        msg = f"{file}: {reason}" if str(file) not in str(reason) else str(reason)
        raise InputError(msg)
    return _load_picks(out_dir)


def _blob_pick(micrographs, diameter, working_diameter, out_dir: Path, options) -> dict:
    """Round 0 without a network: :func:`~deepscope.cryoem.picking.blob_picks` on each micrograph at working scale."""
    from deepscope.cryoem.coordinates import write_coordinates
    from deepscope.cryoem.picking import blob_picks
    from deepscope.cryoem.preprocess import load_for_picking, to_micrograph_frame

    out_dir.mkdir(parents=True, exist_ok=True)
    picks = {}
    for path in micrographs:
        image, scale, _ = load_for_picking(path, diameter, working_diameter, options.enhance)
        picks[path.stem] = to_micrograph_frame(blob_picks(image, working_diameter), scale)
        write_coordinates(picks[path.stem], out_dir / f"{path.stem}.star")
    return picks


def _classify_and_keep(picks_dir: Path, micrographs, diameter, round_dir: Path, options, progress) -> dict:
    """Classify a round's picks, write the classes and the kept picks (``labels/``); the round's counts."""
    from deepscope.cryoem.classify2d.run import classify_pick_sets, write_classify_outputs
    from deepscope.cryoem.coordinates import coordinate_files_by_stem, write_coordinates
    from deepscope.cryoem.pick_sets import PickSet

    pick_set = PickSet("picks", coordinate_files_by_stem(picks_dir, "picks"))
    result = classify_pick_sets([pick_set], micrographs, diameter, n_classes=options.n_classes,
                                device=options.device, seed=options.seed, progress=progress)
    write_classify_outputs(result, round_dir / "classes")
    kept = result.particles[result.particles["junk"] == 0]
    labels = round_dir / "labels"
    labels.mkdir(exist_ok=True)
    for stem, rows in kept.groupby("micrograph"):
        write_coordinates(rows[["x", "y"]].reset_index(drop=True), labels / f"{stem}.star")
    return {"picks": len(result.particles), "kept": len(kept), "classes": len(result.classes),
            "classes_kept": int((result.classes["junk"] == 0).sum()),
            "kept_micrographs": int(kept["micrograph"].nunique())}


def _fine_tune(init, micrographs, labels_dir: Path, diameter, model_dir: Path, options, progress) -> None:
    """``cryoem train --init`` on the kept picks of the round before (the micrographs that kept any)."""
    from deepscope.config import TrainConfig
    from deepscope.cryoem.train import resolve_target, train_picker

    labelled = {p.stem for p in labels_dir.glob("*.star")}
    used = [m for m in micrographs if m.stem in labelled]
    if len(used) < 2:
        msg = (f"{labels_dir.parent.name}: only {len(used)} micrograph(s) kept any particle after 2D "
               "classification; fine-tuning needs 2 (one validates). Check --diameter, or give more micrographs")
        raise InputError(msg)
    config = TrainConfig(model=init.model, model_kwargs=dict(init.shape), epochs=options.epochs,
                         batch_size=options.batch_size, lr=options.lr, patience=options.epochs, seed=options.seed,
                         threads=options.threads, device=options.device)
    train_picker(used, labels_dir, diameter, model_dir, config, target=resolve_target(None, init.model, False),
                 working_diameter=init.working_diameter, patches_per_epoch=options.patches,
                 enhance=options.enhance, init=init, progress=progress)


def selftrain(micrographs: list[Path], diameter: float | str, run_dir: str | Path, init: str | Path | None = None,
              options: SelftrainOptions | None = None, strict: bool = False,
              progress: bool = True) -> SelftrainResult:
    """Adapt a picker to micrographs without labels (module docstring: the rounds, the stopping rule, the files).

    Parameters
    ----------
    micrographs : list of Path
        Two or more micrograph files with unique stems.
    diameter : float or "auto"
        Particle diameter in micrograph pixels, or estimated from the
        micrographs (:func:`~deepscope.cryoem.particle_size.resolve_diameter`;
        a number 1.5x off the estimate is warned about).
    run_dir : str or Path
        The run directory (created). A rerun with the same settings goes on
        where it stopped, or returns the finished run untouched; one holding
        another run is refused.
    init : str or Path, optional
        The starting picker: a shipped name, run directory or checkpoint
        (default :data:`GENERAL_PICKER`); ``"blob"`` takes round 0's
        picks from :func:`~deepscope.cryoem.picking.blob_picks` and the
        weights from :data:`GENERAL_PICKER`.
    options : SelftrainOptions, optional
    strict : bool
        Refuse a diameter 1.5x off the estimate instead of warning.
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    SelftrainResult

    Raises
    ------
    InputError
        Bad options or diameter, fewer than 2 micrographs, a micrograph that
        cannot be read, no picks at all in round 0, or too few kept ones to
        fine-tune on. When round 0 fails in a ``run_dir`` this call created,
        nothing is left behind.
    ModelError
        If ``init`` is not a cryo-EM picker.
    OutputError
        If ``run_dir`` holds another run or cannot be written.
    """
    from deepscope.config import TrainConfig, prepare_run_dir
    from deepscope.core.distributed import set_torch_threads
    from deepscope.core.trainer import mark_finished, start_run
    from deepscope.cryoem.classify2d.run import check_output_dir
    from deepscope.cryoem.particle_size import resolve_diameter
    from deepscope.cryoem.train import load_initial_picker

    options = options or SelftrainOptions()
    options.check()
    if diameter != "auto" and not (isinstance(diameter, (int, float)) and diameter > 0):
        msg = f"--diameter must be positive (pixels) or auto, got {diameter}"
        raise InputError(msg)
    micrographs = [Path(p) for p in micrographs]
    _check_micrographs(micrographs)
    init_name = str(init) if init is not None else GENERAL_PICKER
    # "blob": round 0's candidates come from a blob detector, the weights from the general picker
    start = load_initial_picker(GENERAL_PICKER if init_name == BLOB else init_name)
    diameter = resolve_diameter(micrographs, diameter, strict)
    run_dir = check_output_dir(run_dir)
    # what decides the result; device and threads may differ on a rerun (run_settings leaves them out)
    config = TrainConfig(model=start.model, model_kwargs=dict(start.shape), epochs=options.epochs,
                         batch_size=options.batch_size, lr=options.lr, seed=options.seed,
                         threads=options.threads, device=options.device)
    task = {"command": "cryoem selftrain", "micrographs": [str(p) for p in micrographs], "diameter": diameter,
            "init": init_name, "rounds": options.rounds, "patches": options.patches,
            "min_growth": options.min_growth, "agreement": options.agreement, "candidates": options.candidates,
            "threshold": options.threshold,
            "n_classes": options.n_classes, "enhance": options.enhance}
    begun = start_run(run_dir, config, task, resume=False, resume_option=None)
    if begun.summary is not None:
        return SelftrainResult(pd.DataFrame(begun.summary["rounds"]), begun.summary["final_round"], run_dir)
    created = not run_dir.exists()
    set_torch_threads(options.threads)
    prepare_run_dir(run_dir, config, task)
    try:
        rows = [_round(0, init_name, start, micrographs, diameter, run_dir, options, progress)]
        if rows[0]["picks"] == 0:
            source = "the blob detector" if init_name == BLOB else init_name
            msg = (f"{source} picked no particles in any of the {len(micrographs)} micrographs at "
                   f"--diameter {diameter:g}; check the diameter (or give auto) and the micrographs")
            raise InputError(msg)
    except InputError:
        if created:  # nothing half-written: a run that fails at its start leaves no directory
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    for r in range(1, options.rounds + 1):
        rows.append(_round(r, init_name, start, micrographs, diameter, run_dir, options, progress))
        log.info("round %d: %d picks, %d kept (%.0f%%), F1 %.3f against round %d's kept, %.0f s", r,
                 rows[-1]["picks"], rows[-1]["kept"], 100 * rows[-1]["kept_share"], rows[-1]["agreement"], r - 1,
                 rows[-1]["seconds"])
        if should_stop(rows, options.min_growth, options.agreement):
            break
    table = pd.DataFrame(rows)
    final = int(table.loc[table["kept"].where(table["round"] >= 1).idxmax(), "round"])
    table["final"] = (table["round"] == final).astype(int)
    with atomic_path(run_dir / "best.pt") as tmp:
        shutil.copyfile(run_dir / f"round_{final}" / "model" / "best.pt", tmp)
    write_table(table, run_dir / "rounds.csv")
    _write_report(table, run_dir, init_name, diameter, options)
    mark_finished(run_dir, config, task, {"rounds": table.to_dict("records"), "final_round": final})
    return SelftrainResult(table, final, run_dir)


def _round(r: int, init_name: str, start, micrographs, diameter, run_dir: Path, options, progress) -> dict:
    """Round ``r``: fine-tune (``r >= 1``), pick, classify, keep; its row, or the one recorded by an earlier run."""
    from deepscope.cryoem.predictor import Picker

    round_dir = run_dir / f"round_{r}"
    record = round_dir / ROUND_RECORD
    if record.is_file():
        return json.loads(record.read_text())
    began = time.perf_counter()
    round_dir.mkdir(exist_ok=True)
    if r >= 1:
        _fine_tune(start, micrographs, run_dir / f"round_{r - 1}" / "labels", diameter, round_dir / "model",
                   options, progress)
    if r == 0 and init_name == BLOB:
        picker = None
        picks = _blob_pick(micrographs, diameter, start.working_diameter, round_dir / "picks", options)
    else:
        picker = Picker.from_checkpoint(init_name if r == 0 else round_dir / "model", options.device)
        picks = _pick(picker, micrographs, diameter, round_dir / "picks", options, progress)
    row = {"round": r, "picks": sum(len(t) for t in picks.values())}
    if row["picks"] == 0:
        row.update(kept=0, classes=0, classes_kept=0, kept_micrographs=0)
    else:
        row.update(_classify_and_keep(round_dir / "picks", micrographs, diameter, round_dir, options, progress))
    row["kept_share"] = row["kept"] / row["picks"] if row["picks"] else 0.0
    if r >= 1:
        kept = _load_picks(round_dir / "labels")
        row["agreement"] = picks_agreement(kept, _load_picks(run_dir / f"round_{r - 1}" / "labels"), diameter)
    else:
        row["agreement"] = float("nan")
    if picker is None:
        row["threshold"] = float("nan")  # the blob detector's cut is BLOB_Z robust standard deviations
    else:
        row["threshold"] = options.candidates * picker.threshold if options.threshold is None else options.threshold
    row["seconds"] = round(time.perf_counter() - began, 1)
    with atomic_path(record) as tmp:
        tmp.write_text(json.dumps(row) + "\n")
    return row


def _load_picks(directory: Path) -> dict:
    """A round's picks or kept picks per stem (:func:`~deepscope.cryoem.pick_sets.load_pick_set`; none: empty)."""
    from deepscope.cryoem.pick_sets import load_pick_set

    if not any(directory.glob("*.star")):
        return {}
    return load_pick_set(directory)


def _write_report(table: pd.DataFrame, run_dir: Path, init_name: str, diameter: float, options) -> Path:
    """``run_dir/report.html``: the rounds' table and each round's class montage."""
    from deepscope.core.report import Report
    from deepscope.cryoem.classify2d.background import BACKGROUND_QUANTILE, PICK_RULE
    from deepscope.cryoem.classify2d.junk import JUNK_RULE

    report = Report(run_dir, "Self-training a picker without labels")
    report.code(f"start: {init_name}\ndiameter (px): {diameter:g}\n"
                + "\n".join(f"{k}: {v}" for k, v in dataclasses.asdict(options).items()))
    final = int(table.loc[table["final"] == 1, "round"].iloc[0])
    report.text(f"Round 0 picks with {init_name}; each later round fine-tunes it on the picks that 2D "
                f"classification kept in the round before, then picks again. Stopped after round "
                f"{int(table['round'].max())}: the rule stops when the kept set grows by less than "
                f"{options.min_growth:.0%} or agrees with the previous round's at F1 "
                f"{options.agreement:g} or more, or after {options.rounds} rounds. Final picker: round {final}'s "
                f"(the most kept particles), copied to best.pt. Class rule: {JUNK_RULE}. Pick rule: "
                f"{PICK_RULE.format(quantile=BACKGROUND_QUANTILE)}.")
    shown = table.rename(columns={"kept_share": "kept share", "classes_kept": "classes kept",
                                  "kept_micrographs": "micrographs kept", "agreement": "F1 vs previous kept"})
    report.table(shown.set_index("round"), caption="rounds")
    for r in table["round"]:
        if (run_dir / f"round_{r}" / "classes" / "class_averages.png").is_file():
            report.heading(f"Round {r}: class averages", level=3)
            report.image(f"round_{r}/classes/class_averages.png",
                         f"round {r}: green frame = kept (particle), red frame = junk")
    return report.write()
