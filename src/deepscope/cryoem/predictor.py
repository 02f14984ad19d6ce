"""The trained picker, and picking whole micrographs into STAR files.

:class:`Picker` wraps a trained network with the settings tuned for it
(working diameter, threshold, NMS, edge margin, test-time views) and picks
one working-scale image; :class:`PickWriter` is its batch predictor for
:mod:`deepscope.core.batch.runner` (``load_input`` / ``rows``), writing one
STAR file per micrograph; :func:`pick_files` adds their index
(``coordinate_files.star``); :func:`pick_micrographs` is what ``cryoem
pick`` runs.
"""

from __future__ import annotations

import glob
import itertools
import warnings
from pathlib import Path

import numpy as np

from deepscope.core.distributed import set_torch_threads
from deepscope.core.files import atomic_path
from deepscope.core.batch.options import BatchOptions
from deepscope.cryoem.coordinates import (COORDINATE_INDEX, check_coordinate_directory, write_coordinate_index,
                                          write_coordinates)
from deepscope.cryoem.io import read_micrograph
from deepscope.cryoem.figures import to_uint8, write_overlay, write_overlay_tiles
from deepscope.cryoem.picking import find_picks, predict_maps, refine_centres
from deepscope.cryoem.preprocess import load_for_picking, to_micrograph_frame, to_working_frame
from deepscope.cryoem.recentre import load_for_recentring, recentre_picks
from deepscope.errors import InputError, ModelError, NoPicksWarning

# Centroid window of :func:`refine_centres`, in particle diameters: wider lets
# neighbours leak in (chosen as docs/cryoem.md, "Centres", describes).
REFINE_FRACTION = 0.37

class Picker:
    """A trained picking network with its task settings.

    Parameters
    ----------
    model : torch.nn.Module
    meta : dict
        Checkpoint metadata: ``target``, ``working_diameter``,
        ``threshold``, ``nms_fraction``, ``edge_fraction``, ``augment``.
    device : str
        ``cpu``, ``cuda`` or ``cuda:N``: where the network runs (maps and
        picks come back on the CPU).
    network : OnnxNetwork, optional
        The ONNX export that runs the network instead of torch
        (:func:`deepscope.core.onnx_engine.onnx_network`).

    Raises
    ------
    ModelError
        If ``meta`` is not a picker's (another domain's checkpoint).
    InputError
        If CUDA is asked for and absent.
    """

    def __init__(self, model, meta: dict, device: str = "cpu", network=None):
        missing = [k for k in ("target", "working_diameter") if k not in meta]
        if missing:
            msg = f"checkpoint is not a cryo-EM picker (metadata lacks {', '.join(missing)})"
            raise ModelError(msg)
        from deepscope.core.distributed import select_device
        from deepscope.core.speed import fold_batchnorm

        self.model = fold_batchnorm(model.eval()).to(select_device(device))
        self.network = network or self.model
        # What runs the network: "torch", "onnx" or "onnx-int8".
        self.engine = network.engine if network is not None else "torch"
        self.target = meta["target"]
        self.working_diameter = float(meta["working_diameter"])
        self.threshold = float(meta.get("threshold", 0.5))
        self.nms_fraction = float(meta.get("nms_fraction", 0.6))
        self.edge_fraction = float(meta.get("edge_fraction", 0.0))
        self.augment = int(meta.get("augment", 1))
        # Systematic offset of the refined picks from the training labels, working px (x, y), measured
        # when training ended (deepscope.cryoem.train.measure_centre_offset); subtracted from every pick.
        self.centre_offset = tuple(float(v) for v in meta.get("centre_offset", (0.0, 0.0)))
        # Names of the micrographs that trained or tuned it, or the picker it started from:
        # scoring on them is not a test.
        self.seen_micrographs = frozenset(meta.get("train_micrographs", ())) | frozenset(
            meta.get("val_micrographs", ())) | frozenset(meta.get("init_micrographs", ()))
        # Where the weights came from (set by from_checkpoint): identifies resumable pick jobs.
        self.checkpoint = None

    @classmethod
    def from_checkpoint(cls, name_or_path: str | Path | None = None, device: str = "cpu",
                        engine: str = "auto") -> Picker:
        """Load a picker: a shipped model's name, a run directory or a ``.pt`` file.

        Parameters
        ----------
        name_or_path : str or Path, optional
            See :func:`deepscope.registry.resolve_model`; None is the
            shipped default, ``cryoem_general``.
        device : str
            Where the network runs.
        engine : str
            What runs the network: ``auto`` (on the CPU a shipped model's
            fp32 ONNX export, else torch), ``torch``, ``onnx`` or
            ``onnx-int8`` (:mod:`deepscope.core.onnx_engine`).

        Returns
        -------
        Picker

        Raises
        ------
        ModelError
            If nothing is found there, the checkpoint is unreadable or not
            a cryo-EM picker, or the engine cannot run it.
        """
        from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint
        from deepscope.core.onnx_engine import onnx_network
        from deepscope.registry import resolve_model, shipped_entry

        path = resolve_model(name_or_path, "cryoem")
        record = load_checkpoint(path)
        network = onnx_network(shipped_entry(name_or_path, "cryoem"), device, engine, path)
        picker = cls(model_from_checkpoint(record), record.get("meta", {}), device, network=network)
        picker.checkpoint = path
        return picker

    def maps(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Particle and region probability maps of a working-scale image (see :func:`predict_maps`)."""
        return predict_maps(self.model, image, self.target, self.augment, run_with=self.network)

    def pick(self, image: np.ndarray, scale: float, threshold: float | None = None, keep_maps: bool = False,
             micrograph: np.ndarray | None = None):
        """Pick particles in a working-scale image.

        Parameters
        ----------
        image : numpy.ndarray
            Normalised image at working scale.
        scale : float
            Working pixels per micrograph pixel; picks are returned in the
            micrograph's frame (:func:`~deepscope.cryoem.preprocess.to_micrograph_frame`).
        threshold : float, optional
            Defaults to the threshold tuned on the validation micrographs.
        keep_maps : bool
            Also return the probability maps.
        micrograph : numpy.ndarray, optional
            The same micrograph at full or an integer-reduced resolution
            (:func:`~deepscope.cryoem.recentre.load_for_recentring` reads it
            at a quarter for 108 px particles): each pick is then re-centred on the image
            (:func:`~deepscope.cryoem.recentre.recentre_picks`) instead of
            by the model's measured offset, and gets a ``correlation``
            column. Better where the truth is the particle's own centre
            (simulated micrographs), worse against EMPIAR-10017's CryoPPP
            labels (docs/cryoem.md, "Centres").

        Returns
        -------
        picks : pandas.DataFrame
            ``x``, ``y``, ``score`` in the micrograph's pixels.
        maps : tuple, only if ``keep_maps``
            ``(particle, regions)`` at working scale.
        """
        particle, regions = self.maps(image)
        picks = find_picks(particle, regions, self.working_diameter,
                           self.threshold if threshold is None else threshold, self.nms_fraction,
                           self.edge_fraction)
        picks = refine_centres(particle, picks, REFINE_FRACTION * self.working_diameter)
        if micrograph is None:
            picks = picks.assign(x=picks["x"] - self.centre_offset[0], y=picks["y"] - self.centre_offset[1])
            picks = to_micrograph_frame(picks, scale)
        else:
            # pixels of `micrograph` per micrograph pixel: 1/4 for a JPEG decoded at a quarter
            fine_scale = micrograph.shape[1] / image.shape[1] * scale
            picks = to_micrograph_frame(recentre_picks(micrograph, to_micrograph_frame(picks, scale / fine_scale),
                                                       self.working_diameter / scale * fine_scale), fine_scale)
        return (picks, (particle, regions)) if keep_maps else picks


class PickWriter:
    """A picker that writes each micrograph's STAR file: a batch predictor
    (see :mod:`deepscope.core.batch.runner`).

    Parameters
    ----------
    picker : Picker
    diameter : float
        Particle diameter in micrograph pixels.
    out_dir : Path
        Existing, writable directory (shared by every Dask worker).
    threshold : float, optional
        Overrides the picker's tuned threshold.
    enhance : {"auto", "on", "off"}
    masks, overlays : bool
        Also write ``<stem>_mask.png`` (working scale) / ``<stem>_overlay.png``
        (the whole micrograph at working scale) and ``<stem>_overlay_r<i>c<j>.png``
        (full-resolution tiles, :func:`~deepscope.cryoem.figures.write_overlay_tiles`).
    recentre : bool
        Re-centre every pick on the micrograph itself
        (:mod:`~deepscope.cryoem.recentre`) instead of correcting the
        network's measured offset.
    polarity : {"auto", "dark", "bright"}
        Particles darker or brighter than the ice; ``auto`` reads it from
        each micrograph (:func:`~deepscope.cryoem.preprocess.load_for_picking`).
    """

    output_columns = ("n_picks", "star")  # of every row of rows()

    def __init__(self, picker: Picker, diameter: float, out_dir: str | Path, threshold: float | None = None,
                 enhance: str = "auto", masks: bool = False, overlays: bool = False, recentre: bool = False,
                 polarity: str = "auto"):
        self.picker = picker
        self.diameter = diameter
        self.out_dir = Path(out_dir)
        self.threshold = threshold
        self.enhance = enhance
        self.masks = masks
        self.overlays = overlays
        self.recentre = recentre
        self.polarity = polarity

    @property
    def engine(self) -> str:
        """What runs the picker's network."""
        return self.picker.engine

    @property
    def output_suffixes(self) -> tuple[str, ...]:
        """Suffixes of the files this writer puts in ``out_dir`` (see :mod:`deepscope.core.batch.runner`)."""
        return (".star",) + ((".png",) if self.masks or self.overlays else ())

    def output_files(self, rows: list[dict]) -> list[Path]:
        """The files written for ``rows``: their checksums let a rerun notice a damaged or deleted one."""
        files = []
        for row in rows:
            star = Path(row["star"])
            files.append(star)
            if self.masks:
                files.append(star.with_name(f"{star.stem}_mask.png"))
            if self.overlays:
                files.append(star.with_name(f"{star.stem}_overlay.png"))
                # the tiles' count follows the micrograph's size, which rows do not carry
                files.extend(sorted(star.parent.glob(f"{glob.escape(star.stem)}_overlay_r*c*.png")))
        return files

    def load_input(self, path: Path):
        """Read one micrograph at the picker's working scale (and, to re-centre, at about 27 px per particle)."""
        fine = load_for_recentring(path, self.diameter) if self.recentre else None
        return path, load_for_picking(path, self.diameter, self.picker.working_diameter, self.enhance,
                                      self.polarity), fine

    def rows(self, items: list) -> list[dict]:
        """Pick, write the outputs, and return ``n_picks`` and ``star`` per micrograph."""
        from PIL import Image

        rows = []
        for path, (image, scale, _shape), fine in items:
            picks, (particle, _regions) = self.picker.pick(image, scale, self.threshold, keep_maps=True,
                                                           micrograph=fine)
            star = self.out_dir / f"{path.stem}.star"
            if len(picks) == 0:
                warnings.warn(f"{path}: no particles picked", NoPicksWarning, stacklevel=2)
            write_coordinates(picks, star)
            if self.masks:
                with atomic_path(self.out_dir / f"{path.stem}_mask.png") as tmp:
                    Image.fromarray(to_uint8(particle, 0.0, 1.0)).save(tmp, format="PNG")
            if self.overlays:
                write_overlay(image, to_working_frame(picks, scale), self.picker.working_diameter / 2,
                              self.out_dir / f"{path.stem}_overlay.png")
                write_overlay_tiles(read_micrograph(path), picks, self.diameter / 2, self.out_dir, path.stem)
            rows.append({"n_picks": len(picks), "star": str(star)})
        return rows


def check_unique_stems(names) -> None:
    """Refuse inputs whose outputs would collide: two with one stem, or one named like the pick index.

    ``names`` are the inputs' names or paths, as the error should show them.

    Raises
    ------
    InputError
        Naming the input that would overwrite another's output.
    """
    seen = {}
    for name in names:
        stem = Path(name).stem
        if stem == Path(COORDINATE_INDEX).stem:
            msg = f"{name}: its picks would overwrite the pick directory's {COORDINATE_INDEX}; rename it"
            raise InputError(msg)
        if stem in seen:
            msg = f"{name}: same name as {seen[stem]}; outputs are named by stem, rename one"
            raise InputError(msg)
        seen[stem] = name


def pick_files(inputs, picker: Picker, diameter: float | str, out_dir: str | Path, threshold: float | None = None,
               enhance: str = "auto", masks: bool = False, overlays: bool = False, recentre: bool = False,
               options: BatchOptions | None = None, polarity: str = "auto",
               strict: bool = False) -> tuple[list[dict], list[tuple[str, str]]]:
    """Pick every micrograph and write ``out_dir/<stem>.star`` and ``out_dir/coordinate_files.star``.

    The index ``coordinate_files.star`` (RELION 4's layout,
    :func:`~deepscope.cryoem.coordinates.write_coordinate_index`) pairs each
    micrograph picked with its STAR file. One micrograph is one partition: a
    run killed part-way and restarted with the same arguments picks only the
    micrographs it had not finished.

    Parameters
    ----------
    inputs : sequence of str or Path
        Micrographs, directories and uncompressed ``.tar`` shards; stems
        must be unique (they name the outputs).
    picker : Picker
    diameter : float or "auto"
        Particle diameter in micrograph pixels, or ``"auto"``: estimated from
        the first micrograph files
        (:func:`~deepscope.cryoem.particle_size.resolve_diameter`). A number
        is checked against the estimate of the first micrograph file: one
        1.5 times off or more is warned about
        (:class:`~deepscope.errors.DiameterWarning`).
    out_dir : Path
        Writable directory (created if needed; not named like a coordinate file).
    threshold : float, optional
        Overrides the picker's tuned threshold.
    enhance : {"auto", "on", "off"}
    masks, overlays : bool
        Also write ``<stem>_mask.png`` / ``<stem>_overlay.png`` (working scale).
    recentre : bool
        Re-centre the picks on the micrograph (see :class:`PickWriter`).
    options : BatchOptions, optional
        Inputs, read threads and cluster (on an existing cluster the workers
        must see ``out_dir`` at the same path); one micrograph per partition.
    polarity : {"auto", "dark", "bright"}
        See :class:`PickWriter`.
    strict : bool
        Refuse a diameter 1.5 times off the estimate instead of warning.

    Returns
    -------
    rows : list of dict
        ``file``, ``n_picks``, ``star`` per good micrograph.
    failures : list of (str, str)

    Raises
    ------
    InputError
        If two inputs share a stem, ``"auto"`` finds no particles to measure,
        or (with ``strict``) the diameter is far from the micrographs' own.
    OutputError
        If ``out_dir`` is named like a coordinate file (``picks.star``) and is not a directory.
    """
    import dataclasses

    from deepscope.core.files import check_writable
    from deepscope.core.batch.runner import describe_job, run_batch
    from deepscope.core.batch.sources import InputStream
    from deepscope.core.batch.store import STORE_SUFFIXES, PartStore
    from deepscope.cryoem.io import MICROGRAPH_SUFFIXES
    from deepscope.cryoem.particle_size import MICROGRAPHS_READ, resolve_diameter

    # One micrograph is a partition and a batch: a kill loses at most one.
    options = dataclasses.replace(options or BatchOptions(), partition_size=1, batch_size=1)
    options.check()
    check_coordinate_directory(out_dir)
    stream = InputStream(inputs, MICROGRAPH_SUFFIXES, options.catalog, options.path_column)
    check_unique_stems(ref.name for ref in stream)
    # the size is read from the first micrographs that are plain files, before anything is written
    first = [Path(ref.path) for ref in itertools.islice(stream, 50) if not ref.in_tar][:MICROGRAPHS_READ]
    diameter = resolve_diameter(first, diameter, strict)
    writer = PickWriter(picker, diameter, out_dir, threshold, enhance, masks, overlays, recentre, polarity)
    # Before anything is created: overlays written among the micrographs would be read back next time.
    stream.check_output(Path(out_dir), STORE_SUFFIXES + writer.output_suffixes)
    out_dir = check_writable(out_dir, is_dir=True)
    job = describe_job("cryoem pick", stream, writer, picker.checkpoint, options, diameter=diameter,
                       threshold=threshold, enhance=enhance, masks=masks, overlays=overlays, augment=picker.augment,
                       recentre=recentre, polarity=polarity, edge_margin=picker.edge_fraction)
    # The STAR files are the results; the parts only record which are done.
    store = PartStore(out_dir / ".deepscope-pick", job, keep=False)
    failures = run_batch(stream, writer, store, options, desc="pick")
    rows = [row for table in store.iter_tables() for row in table.to_dict("records")]
    store.finish()
    if rows:
        write_coordinate_index([(row["file"], row["star"]) for row in rows], out_dir / COORDINATE_INDEX)
    return rows, failures


def pick_micrographs(inputs, diameter: float | str, out_dir: str | Path, model: str | Path | None = None,
                     threshold: float | None = None, augment: int | None = None, enhance: str = "auto",
                     masks: bool = False, overlays: bool = False, recentre: bool = False,
                     options: BatchOptions | None = None, polarity: str = "auto",
                     strict: bool = False,
                     edge_margin: float | None = None) -> tuple[list[dict], list[tuple[str, str]]]:
    """Load a picker and pick every micrograph: what ``cryoem pick`` runs.

    Parameters
    ----------
    inputs : sequence of str or Path
        Micrographs, directories and uncompressed ``.tar`` shards.
    diameter : float or "auto"
        Particle diameter in micrograph pixels, or ``"auto"`` (see :func:`pick_files`).
    out_dir : str or Path
        Writable directory for ``<stem>.star`` (created if needed).
    model : str or Path, optional
        Shipped model name, run directory or checkpoint (default: the
        shipped default, ``cryoem_general``).
    threshold : float, optional
        Minimum pick score (default: the one tuned at training).
    augment : int, optional
        Test-time views (default: the model's).
    enhance : {"auto", "on", "off"}
    masks, overlays : bool
        Also write ``<stem>_mask.png`` / ``<stem>_overlay.png``.
    recentre : bool
        Re-centre the picks on the micrograph (see :class:`PickWriter`).
    options : BatchOptions, optional
        Inputs, threads, device and cluster.
    polarity : {"auto", "dark", "bright"}
        See :class:`PickWriter`.
    strict : bool
        Refuse a diameter 1.5 times off the estimate instead of warning.
    edge_margin : float, optional
        Picks nearer the micrograph's edge than this many diameters are
        dropped (default: the model's ``edge_fraction``).

    Returns
    -------
    rows, failures
        As :func:`pick_files` returns them.

    Raises
    ------
    InputError
        If the diameter or threshold is out of range (with ``strict``: far
        from the micrographs' own), or CUDA is asked for and absent.
    ModelError
        If the model is not found or is not a cryo-EM picker.
    """
    if diameter != "auto" and not (isinstance(diameter, (int, float)) and diameter > 0):
        msg = f"--diameter must be positive (pixels) or auto, got {diameter}"
        raise InputError(msg)
    if threshold is not None and not 0 <= threshold <= 1:
        msg = f"--threshold must be between 0 and 1, got {threshold}"
        raise InputError(msg)
    if edge_margin is not None and not 0 <= edge_margin < 10:
        msg = f"--edge-margin must be between 0 and 10 diameters, got {edge_margin}"
        raise InputError(msg)
    options = options or BatchOptions()
    options.check()
    set_torch_threads(options.threads)
    picker = Picker.from_checkpoint(model, options.device, options.engine)
    if augment:
        picker.augment = augment
    if edge_margin is not None:
        picker.edge_fraction = edge_margin
    return pick_files(inputs, picker, diameter, out_dir, threshold=threshold, enhance=enhance, masks=masks,
                      overlays=overlays, recentre=recentre, options=options, polarity=polarity, strict=strict)
