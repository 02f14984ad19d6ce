"""Train a picking U-Net: targets, loss, patches, fit, then tune picking on the micrographs it has seen.

:func:`train_picker` is ``cryoem train``: it pairs micrographs with coordinate
files, sets up the run directory and fits through :func:`deepscope.core.trainer.fit`;
:func:`tune_checkpoint` then stores in the checkpoint the threshold, NMS distance
and edge margin that maximise validation F1 (:func:`tune_picking`) and the
centre offset (:func:`measure_centre_offset`): labels carry the conventions of
whatever made them and a network trained on them learns that frame, so
:class:`~deepscope.cryoem.predictor.Picker` subtracts the median offset of its
picks from the labels (near zero where labels are the particles' centres).
"""

import dataclasses
import logging
from pathlib import Path

import numpy as np

from deepscope.config import TrainConfig
from deepscope.cryoem.io import IGNORE_LABEL
from deepscope.errors import InputError

log = logging.getLogger(__name__)

# --target -> the network that learns it
TARGETS = {"disks": "cryoem_unet", "regions": "cryoem_unet_regions", "joint": "cryoem_unet_joint"}
# a 108 px particle (EMPIAR-10017) binned by 8: big enough for the U-Net to
# see its shape, small enough that a 4096 px micrograph becomes 512 px
WORKING_DIAMETER = 13.5
# model is the disks network (no --labels); --target joint/regions swaps in theirs
DEFAULT_CONFIG = TrainConfig(model="cryoem_unet", epochs=20, batch_size=16, lr=2e-3, patience=5)
DEFAULT_PATCH = 128  # patch side at working scale: ~9 particles across, room for their surroundings
DEFAULT_PATCHES_PER_EPOCH = 256


def resolve_target(target: str | None, arch: str | None, has_labels: bool) -> str:
    """The target to train: as given, else the one ``arch`` learns, else ``joint`` with labels, ``disks`` without.

    Examples
    --------
    >>> resolve_target(None, "cryoem_unet_regions", True), resolve_target(None, None, False)
    ('regions', 'disks')
    """
    learns = {network: name for name, network in TARGETS.items()}
    return target or learns.get(arch) or ("joint" if has_labels else "disks")


def default_config(target: str) -> TrainConfig:
    """:data:`DEFAULT_CONFIG` with the network of ``target`` (``disks``, ``regions`` or ``joint``).

    Examples
    --------
    >>> default_config("joint").model
    'cryoem_unet_joint'
    """
    return dataclasses.replace(DEFAULT_CONFIG, model=TARGETS[target])


@dataclasses.dataclass(frozen=True)
class InitialPicker:
    """A trained picker to start training from (``cryoem train --init``)."""

    name: str  # as given: a shipped name, run directory or checkpoint
    model: str  # its registered network
    shape: dict  # its width and depth
    working_diameter: float
    seen: tuple[str, ...]  # the micrographs that trained or tuned it, and those of its own start
    state_dict: dict = dataclasses.field(repr=False)

    @property
    def network(self) -> str:
        """Its network and shape in words (:func:`network_name`)."""
        return network_name(self.model, self.shape)


def network_name(model: str, model_kwargs: dict) -> str:
    """A U-Net picker's network and shape in words, for messages.

    Examples
    --------
    >>> network_name("cryoem_unet", {"width": 4})
    'cryoem_unet (width 4, depth 3)'
    """
    return f"{model} (width {model_kwargs.get('width', 16)}, depth {model_kwargs.get('depth', 3)})"


def load_initial_picker(name_or_path: str | Path) -> InitialPicker:
    """The weights and settings of a shipped or trained picker to fine-tune.

    Parameters
    ----------
    name_or_path : str or Path
        A shipped cryo-EM model's name, a run directory or a ``.pt`` file
        (:func:`~deepscope.registry.resolve_model`).

    Returns
    -------
    InitialPicker

    Raises
    ------
    ModelError
        If it names no checkpoint, or one of another domain's network.

    Examples
    --------
    >>> load_initial_picker("cryoem_empiar10017").network
    'cryoem_unet_joint (width 16, depth 3)'
    """
    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.errors import ModelError
    from deepscope.registry import resolve_model

    record = load_checkpoint(resolve_model(name_or_path, "cryoem"))
    if record["model"] not in TARGETS.values():
        msg = f"--init {name_or_path}: {record['model']} is not a cryo-EM picker; give a cryoem model or run"
        raise ModelError(msg)
    kwargs, meta = record.get("model_kwargs", {}), record.get("meta", {})
    seen = {*meta.get("train_micrographs", ()), *meta.get("val_micrographs", ()), *meta.get("init_micrographs", ())}
    shape = {"width": int(kwargs.get("width", 16)), "depth": int(kwargs.get("depth", 3))}
    return InitialPicker(str(name_or_path), record["model"], shape,
                         float(meta.get("working_diameter", WORKING_DIAMETER)), tuple(sorted(seen)),
                         record["state_dict"])


def make_loss(target: str):
    """``loss(outputs, targets)`` for a target kind (``disks``, ``regions`` or ``joint``).

    ``targets`` is a dict with ``mask`` (float, ``(n, 1, h, w)``) and
    ``regions`` (long, ``(n, h, w)``, :data:`~deepscope.cryoem.io.IGNORE_LABEL` where unknown).
    """
    from torch.nn import functional as F

    def particle_loss(logits, mask):
        return F.binary_cross_entropy_with_logits(logits, mask)

    def region_loss(logits, regions):
        if not (regions != IGNORE_LABEL).any():
            # a batch without labelled pixels contributes nothing, not NaN
            return logits.sum() * 0.0
        return F.cross_entropy(logits, regions, ignore_index=IGNORE_LABEL)

    def loss(outputs, targets):
        if target == "disks":
            return particle_loss(outputs, targets["mask"])
        if target == "regions":
            return region_loss(outputs, targets["regions"])
        return particle_loss(outputs[:, :1], targets["mask"]) + region_loss(outputs[:, 1:], targets["regions"])

    return loss


class PatchDataset:
    """Patches from micrographs held in memory: ``length`` random augmented ones, or a fixed grid.

    Parameters
    ----------
    items : list of dict
        Each with ``image``, ``mask`` (2-D float32) and ``regions`` (2-D uint8), at working scale.
    patch : int
        Patch side in pixels (a multiple of the U-Net's ``2**depth``).
    length : int
        Patches per epoch when ``random``.
    random : bool
        Random crops with flips and 90-degree rotations (training), or a
        fixed grid of crops (validation).
    """

    def __init__(self, items, patch, length, random=True):
        self.items, self.patch, self.random = items, patch, random
        if random:
            self.length = length
            self.grid = None
        else:
            self.grid = [(i, r, c) for i, item in enumerate(items)
                         for r in range(0, item["image"].shape[0] - patch + 1, patch)
                         for c in range(0, item["image"].shape[1] - patch + 1, patch)]
            self.length = len(self.grid)

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        import torch

        p = self.patch
        if self.grid is not None:
            i, r, c = self.grid[index]
        else:
            # torch's generator is re-seeded by the trainer every epoch, so
            # patches are reproducible and a resumed run replays them
            i = int(torch.randint(len(self.items), ()))
            rows, cols = self.items[i]["image"].shape
            r = int(torch.randint(rows - p + 1, ()))
            c = int(torch.randint(cols - p + 1, ()))
        item = self.items[i]
        arrays = [item[k][r:r + p, c:c + p] for k in ("image", "mask", "regions")]
        if self.grid is None:
            k = int(torch.randint(4, ()))
            flip = bool(torch.randint(2, ()))
            arrays = [np.rot90(a[:, ::-1] if flip else a, k) for a in arrays]
        image, mask, regions = (np.ascontiguousarray(a) for a in arrays)
        return torch.from_numpy(image)[None], {
            "mask": torch.from_numpy(mask)[None], "regions": torch.from_numpy(regions.astype(np.int64)),
        }


def load_training_item(micrograph: Path, coords: Path, diameter: float, working_diameter: float,
                       mask_fraction: float = 0.5, labels: Path | None = None, coords_flip_y: bool = False,
                       labels_flip_y: bool = False, enhance: str = "auto", flip_height: int | None = None) -> dict:
    """Read one micrograph with its targets at working scale.

    Parameters
    ----------
    micrograph, coords : Path
        Micrograph and its particle-centre file.
    diameter : float
        Particle diameter in the micrograph's pixels.
    working_diameter : float
    mask_fraction : float
        Target disks are this fraction of the particle diameter, so touching
        particles stay separate blobs.
    labels : Path, optional
        CASSPER colour label image.
    coords_flip_y, labels_flip_y : bool
        Coordinates / labels are upside down (coordinates flip with the micrograph's height).
    enhance : {"auto", "on", "off"}
    flip_height : int, optional
        Flip the coordinates with this height instead (``--flip-y HEIGHT``).

    Returns
    -------
    dict
        ``name``, ``image``, ``mask``, ``regions``, ``truth`` (working-scale
        centres) and ``scale``.

    Raises
    ------
    FormatError
        If a file cannot be read.
    InputError
        If the label image's size differs from the micrograph's.
    """
    from deepscope.cryoem.io import flip_y, read_coordinates, read_region_labels
    from deepscope.cryoem.preprocess import disk_mask, load_for_picking, to_working_frame

    image, scale, shape = load_for_picking(micrograph, diameter, working_diameter, enhance)
    table = read_coordinates(coords)
    height = shape[0] if coords_flip_y else flip_height
    if height:
        table = flip_y(table, height)
    truth = to_working_frame(table[["x", "y"]], scale)
    mask = disk_mask(image.shape, truth.to_numpy(), mask_fraction * working_diameter / 2)
    regions = np.full(image.shape, IGNORE_LABEL, dtype=np.uint8)
    if labels is not None:
        full = read_region_labels(labels)
        if full.shape != tuple(shape):
            msg = f"{labels}: label image is {full.shape[1]}x{full.shape[0]}, micrograph is {shape[1]}x{shape[0]}"
            raise InputError(msg)
        if labels_flip_y:
            full = full[::-1]
        # nearest label at each working pixel's centre: labels are classes,
        # averaging them would invent new ones
        rows = np.minimum(((np.arange(image.shape[0]) + 0.5) / scale).astype(int), shape[0] - 1)
        cols = np.minimum(((np.arange(image.shape[1]) + 0.5) / scale).astype(int), shape[1] - 1)
        regions = np.ascontiguousarray(full[np.ix_(rows, cols)])
    return {"name": micrograph.stem, "image": image, "mask": mask, "regions": regions,
            "truth": truth, "scale": scale}


def train_picker(micrographs: list[Path], coords_dir: str | Path, diameter: float, run_dir: str | Path,
                 config: TrainConfig | None = None, target: str | None = None, labels_dir: str | Path | None = None,
                 coords_flip_y: bool = False, labels_flip_y: bool = False, val_names: list[str] | None = None,
                 working_diameter: float = WORKING_DIAMETER, mask_fraction: float = 0.5, patch: int = DEFAULT_PATCH,
                 patches_per_epoch: int = DEFAULT_PATCHES_PER_EPOCH, enhance: str = "auto", resume: bool = False,
                 exclude=(), augment: int = 1, flip_height: int | None = None, progress: bool = True,
                 init: InitialPicker | None = None) -> dict:
    """Train a picking U-Net on micrographs with particle coordinates.

    Parameters
    ----------
    micrographs : list of Path
    coords_dir : str or Path
        Particle-centre files named after the micrographs.
    diameter : float
        Particle diameter in micrograph pixels.
    run_dir : str or Path
        Run directory: ``config.yaml``, checkpoints, history.
    config : TrainConfig, optional
        Default: :func:`default_config` of ``target``; ``model_kwargs`` go to
        the U-Net (``width``, ``depth``).
    target : {"disks", "regions", "joint"}, optional
        Heads to train (``regions`` and ``joint`` need ``labels_dir``); default :func:`resolve_target`.
    labels_dir : str or Path, optional
        CASSPER label PNGs named after the micrographs.
    coords_flip_y, labels_flip_y, flip_height, working_diameter, mask_fraction, enhance
        See :func:`load_training_item`.
    val_names : list of str, optional
        Validation stems (early stopping, tuning); default a seeded ``config.val_fraction``.
    patch, patches_per_epoch
        See :class:`PatchDataset`.
    resume : bool
        Continue the run in ``run_dir`` even if its settings differ; a run
        with the same settings is resumed without it, and a finished one
        returns its summary untouched (:func:`~deepscope.core.trainer.start_run`).
    exclude : iterable of str
        Micrograph stems left out entirely (the test set).
    augment : int
        Test-time views used when picking; the threshold is tuned for them.
    progress : bool
        Progress bar on stderr.
    init : InitialPicker, optional
        Start from these weights instead of random ones
        (:func:`load_initial_picker`): the run must train the same network,
        width, depth and working diameter. A joint picker fine-tunes without
        ``labels_dir`` (its region loss then counts nothing).

    Returns
    -------
    dict
        ``fit`` (:class:`~deepscope.core.trainer.FitResult`), ``tuning``
        (threshold, NMS, edge margin, validation F1, the centre offset of
        :func:`measure_centre_offset`),
        ``train`` and ``val`` stems.

    Raises
    ------
    InputError
        If the diameter, target, network or validation split is unusable,
        a coordinate file matches no micrograph, or ``init`` is another
        network or working scale than the run's.
    ModelError
        If ``config.model`` is not a cryo-EM network.
    """
    from deepscope.config import prepare_run_dir
    from deepscope.core.checkpoint import BEST_NAME
    from deepscope.core.files import check_writable
    from deepscope.core.trainer import FitResult, fit, mark_finished, start_run
    from deepscope.cryoem.io import coordinate_files_by_stem, pair_micrographs
    from deepscope.registry import check_arch

    if diameter <= 0:
        msg = f"--diameter must be positive, got {diameter}"
        raise InputError(msg)
    target = resolve_target(target, config.model if config else None, labels_dir is not None)
    if target not in TARGETS:
        msg = f"unknown target {target!r}; use one of {', '.join(TARGETS)}"
        raise InputError(msg)
    # fine-tuning a joint picker without region labels trains its particle head alone
    if target != "disks" and labels_dir is None and not (target == "joint" and init is not None):
        msg = f"target {target!r} needs --labels (CASSPER region label images)"
        raise InputError(msg)
    config = config or default_config(target)
    check_arch(config.model, "cryoem")
    if config.model != TARGETS[target]:
        msg = f"--arch {config.model} cannot learn --target {target}; its network is {TARGETS[target]}"
        raise InputError(msg)
    network = network_name(config.model, config.model_kwargs)
    if init is not None and (init.network, init.working_diameter) != (network, working_diameter):
        msg = (f"--init {init.name}: its network is {init.network} at working diameter "
               f"{init.working_diameter:g}, this run's {network} at {working_diameter:g}; "
               "leave --arch, --target, --width, --depth and --working-diameter to follow it")
        raise InputError(msg)
    pairs = pair_micrographs(micrographs, coordinate_files_by_stem(coords_dir, "coordinate"))
    pairs = [(m, c) for m, c in pairs if m.stem not in set(exclude)]
    if not pairs:
        msg = "every micrograph was excluded"
        raise InputError(msg)
    label_files = {}
    if labels_dir is not None:
        label_files = {p.stem: p for p in Path(labels_dir).glob("*.png")}
        if not label_files:
            msg = f"{labels_dir}: no .png label images"
            raise InputError(msg)
    names = [m.stem for m, _ in pairs]
    val_set = _validation_names(names, val_names, config)
    run_dir = check_writable(run_dir, is_dir=True)
    task = {"target": target, "micrographs": [str(p) for p in micrographs], "coords": str(coords_dir),
            "labels": None if labels_dir is None else str(labels_dir), "diameter": diameter,
            "working_diameter": working_diameter, "excluded": list(exclude), "val": val_names,
            "mask_fraction": mask_fraction, "patch": patch, "patches_per_epoch": patches_per_epoch,
            "enhance": enhance, "augment": augment, "coords_flip_y": coords_flip_y,
            "labels_flip_y": labels_flip_y, "flip_height": flip_height,
            "init": None if init is None else init.name}
    start = start_run(run_dir, config, task, resume)
    if start.summary is not None:
        done = start.summary
        return {**done, "fit": FitResult(**done["fit"]),
                "tuning": {**done["tuning"], "centre_offset": tuple(done["tuning"]["centre_offset"])}}

    items = []
    for micrograph, coords in pairs:
        log.info("loading %s", micrograph.name)
        items.append(load_training_item(micrograph, coords, diameter, working_diameter, mask_fraction,
                                        label_files.get(micrograph.stem), coords_flip_y, labels_flip_y,
                                        enhance, flip_height))
    train_items = [i for i in items if i["name"] not in val_set]
    val_items = [i for i in items if i["name"] in val_set]
    patch = min(patch, *(min(i["image"].shape) for i in items))
    patch -= patch % 2 ** config.model_kwargs.get("depth", 3)
    meta = {"target": target, "working_diameter": working_diameter, "diameter": diameter,
            "mask_fraction": mask_fraction, "threshold": 0.5, "nms_fraction": 0.6, "augment": augment,
            "train_micrographs": sorted(i["name"] for i in train_items),
            "val_micrographs": sorted(i["name"] for i in val_items)}
    if init is not None:
        # what the starting weights saw counts as seen: scoring on it is no test of the result
        meta.update(init=init.name, init_micrographs=list(init.seen))
    prepare_run_dir(run_dir, config, task)
    result = fit(config.model, config.model_kwargs, PatchDataset(train_items, patch, patches_per_epoch),
                 PatchDataset(val_items, patch, 0, random=False), make_loss(target), config, run_dir,
                 meta=meta, resume=start.resume, progress=progress,
                 init_state=None if init is None else init.state_dict)

    tuning = tune_checkpoint(run_dir / BEST_NAME, items, val_items, config.device)
    summary = {"fit": result, "tuning": tuning, "train": meta["train_micrographs"], "val": meta["val_micrographs"]}
    if result.complete:
        mark_finished(run_dir, config, task, {**summary, "fit": dataclasses.asdict(result)})
    return summary


def _validation_names(names, val_names, config):
    """The validation stems: those asked for, or a seeded ``config.val_fraction`` of ``names``."""
    if val_names:
        unknown = sorted(set(val_names) - set(names))
        if unknown:
            msg = f"validation micrograph {unknown[0]!r} is not among the training micrographs"
            raise InputError(msg)
        val_set = set(val_names)
    else:
        rng = np.random.default_rng(config.seed)
        n_val = max(1, round(config.val_fraction * len(names)))
        val_set = set(rng.choice(names, n_val, replace=False).tolist())
    if len(val_set) >= len(names):
        msg = "need at least one training micrograph besides the validation ones"
        raise InputError(msg)
    return val_set


# Fewer matched picks than this give a median too noisy to correct anything with.
MIN_MATCHED = 100


def measure_centre_offset(picker, items: list[dict], radius_fraction: float = 0.5) -> tuple[float, float]:
    """Median (pick - label) over the matched picks of ``items``, in working pixels.

    Parameters
    ----------
    picker : deepscope.cryoem.predictor.Picker
        With its tuned settings; its own ``centre_offset`` is ignored.
    items : list of dict
        From :func:`load_training_item` (``image``, ``truth``).
    radius_fraction : float
        Match radius in particle diameters.

    Returns
    -------
    tuple of float
        ``(dx, dy)``; ``(0.0, 0.0)`` when fewer than :data:`MIN_MATCHED`
        picks match a label.

    Examples
    --------
    >>> import pandas as pd
    >>> class Shifted:  # a picker whose picks sit 1.5 px right of and 0.5 px above the labels
    ...     working_diameter, centre_offset = 10.0, (0.0, 0.0)
    ...     def pick(self, image, scale):
    ...         return self.truth.assign(x=self.truth["x"] + 1.5, y=self.truth["y"] - 0.5)
    >>> picker = Shifted()
    >>> picker.truth = pd.DataFrame({"x": np.arange(200.0) * 20, "y": np.full(200, 50.0)})
    >>> measure_centre_offset(picker, [{"image": None, "truth": picker.truth}])
    (1.5, -0.5)
    """
    from deepscope.cryoem.evaluate import match_picks

    kept, picker.centre_offset = picker.centre_offset, (0.0, 0.0)
    found = []
    try:
        for item in items:
            # scale 1: picks stay in the working frame, where the labels are
            picks = picker.pick(item["image"], 1.0)
            truth = item["truth"]
            pairs = match_picks(picks, truth, radius_fraction * picker.working_diameter)["pairs"]
            found.append(picks[["x", "y"]].to_numpy()[pairs[:, 0]] - truth[["x", "y"]].to_numpy()[pairs[:, 1]])
    finally:
        picker.centre_offset = kept
    found = np.concatenate(found) if found else np.empty((0, 2))
    if len(found) < MIN_MATCHED:
        return (0.0, 0.0)
    dx, dy = np.median(found, axis=0)
    return (round(float(dx), 4), round(float(dy), 4))


def tune_picking(picker, items: list[dict], radius_fraction: float = 0.5) -> dict:
    """Choose the threshold, NMS distance and edge margin that maximise F1 on ``items``.

    ``items`` are validation micrographs from
    :func:`load_training_item`; matches lie within
    ``radius_fraction`` diameters.

    Returns
    -------
    dict
        ``threshold``, ``nms_fraction``, ``edge_fraction`` and the
        validation ``f1``.
    """
    from deepscope.cryoem.evaluate import pr_curve
    from deepscope.cryoem.picking import find_picks

    maps = [picker.maps(item["image"]) for item in items]
    best = {"f1": -1.0}
    for nms_fraction in (0.5, 0.6, 0.7, 0.8):
        for edge_fraction in (0.0, 0.5, 1.0, 1.2):
            picks = [find_picks(p, r, picker.working_diameter, 0.05, nms_fraction, edge_fraction) for p, r in maps]
            curve = pr_curve(picks, [item["truth"] for item in items], radius_fraction * picker.working_diameter,
                             np.round(np.arange(0.05, 0.96, 0.05), 2))
            top = curve.loc[curve["f1"].idxmax()]
            if top["f1"] > best["f1"]:
                best = {"threshold": float(top["threshold"]), "nms_fraction": nms_fraction,
                        "edge_fraction": edge_fraction, "f1": float(top["f1"])}
    return best


def tune_checkpoint(path: Path, items: list[dict], val_items: list[dict], device: str = "cpu") -> dict:
    """Tune picking on the validation micrographs, measure the centre offset on all, store both in ``path``.

    Parameters
    ----------
    path : Path
        A picker checkpoint (``best.pt``); its ``augment`` decides the
        test-time views both are measured with.
    items : list of dict
        Training and validation micrographs from :func:`load_training_item`.
    val_items : list of dict
        The validation micrographs among ``items``.
    device : str

    Returns
    -------
    dict
        :func:`tune_picking`'s settings and validation ``f1``, and
        ``centre_offset`` (:func:`measure_centre_offset`).
    """
    from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint, update_checkpoint_meta
    from deepscope.core.distributed import process_info
    from deepscope.cryoem.predictor import Picker

    record = load_checkpoint(path)
    model, meta = model_from_checkpoint(record), record["meta"]
    tuning = tune_picking(Picker(model, meta, device), val_items)
    settings = {k: tuning[k] for k in ("threshold", "nms_fraction", "edge_fraction")}
    # measured with the tuned settings, on every micrograph whose labels the picker learned or was tuned on
    tuning["centre_offset"] = measure_centre_offset(Picker(model, meta | settings, device), items)
    log.info("validation F1 %.3f at threshold %.2f, NMS %.1f d, edge %.1f d; centres %+.2f, %+.2f working px "
             "from the labels", tuning["f1"], tuning["threshold"], tuning["nms_fraction"], tuning["edge_fraction"],
             *tuning["centre_offset"])
    if process_info().is_primary:  # under torchrun only rank 0 writes
        update_checkpoint_meta(path, **settings, val_f1=tuning["f1"], centre_offset=list(tuning["centre_offset"]))
    return tuning
