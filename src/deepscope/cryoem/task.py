"""Particle picking as segmentation: targets, losses, mask -> picks, scoring.

Targets are built at the network's working scale: a binary mask of disks at
the particle centres (``disks``), CASSPER's 4 region classes (``regions``),
or both (``joint``). Picks are the local maxima of the particle probability
map, thinned by non-maximum suppression at a fraction of the particle
diameter, each scored by its probability; picks that the region head puts on
ice or carbon are dropped. Picks are scored against the truth by one-to-one
matching within half a particle diameter.
"""

import logging

import numpy as np
import pandas as pd

from deepscope.cryoem.io import IGNORE_LABEL, REGION_CLASSES
from deepscope.errors import InputError

log = logging.getLogger(__name__)

TARGETS = {"disks": "cryoem_unet", "regions": "cryoem_unet_regions", "joint": "cryoem_unet_joint"}
# a 108 px particle (EMPIAR-10017) binned by 8: big enough for the U-Net to
# see its shape, small enough that a 4096 px micrograph becomes 512 px
WORKING_DIAMETER = 13.5
# regions on which no particle may be picked
EXCLUDED_REGIONS = ("ice", "carbon")


def disk_mask(shape, centres, radius):
    """Binary mask with a disk of ``radius`` at every centre.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)``.
    centres : numpy.ndarray
        ``(n, 2)`` array of ``x`` (column), ``y`` (row).
    radius : float

    Returns
    -------
    numpy.ndarray
        ``float32`` mask.

    Examples
    --------
    >>> float(disk_mask((5, 5), np.array([[2.0, 2.0]]), 1.0).sum())
    5.0
    """
    mask = np.zeros(shape, dtype=np.float32)
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    for x, y in np.asarray(centres, dtype=np.float64).reshape(-1, 2):
        cx, cy = int(round(x)), int(round(y))
        inside = (dx + cx - x) ** 2 + (dy + cy - y) ** 2 <= radius**2
        rows, cols = dy[inside] + cy, dx[inside] + cx
        keep = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
        mask[rows[keep], cols[keep]] = 1.0
    return mask


def make_loss(target):
    """Loss for a target kind.

    Parameters
    ----------
    target : {"disks", "regions", "joint"}

    Returns
    -------
    callable
        ``loss(outputs, targets)``; ``targets`` is a dict with ``mask``
        (float, ``(n, 1, h, w)``) and ``regions`` (long, ``(n, h, w)``,
        :data:`~deepscope.cryoem.io.IGNORE_LABEL` where unknown).
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
    """Random augmented patches from micrographs held in memory.

    Parameters
    ----------
    items : list of dict
        Each with ``image`` (2-D float32), ``mask`` (2-D float32) and
        ``regions`` (2-D uint8), all at working scale.
    patch : int
        Patch side in pixels (a multiple of the U-Net's ``2**depth``).
    length : int
        Patches per epoch.
    random : bool
        Random crops with flips and 90-degree rotations (training), or a
        fixed grid of crops (validation; ``length`` is then ignored).
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


def predict_maps(model, image, target, augment=1):
    """Run a picking network on a whole micrograph at working scale.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode.
    image : numpy.ndarray
        Normalised 2-D image.
    target : {"disks", "regions", "joint"}
        What the model's output channels mean.
    augment : int
        Test-time augmentation: average the maps over the first ``augment``
        of the 8 rotations/flips of the image (1 = none). Particles have no
        preferred orientation, so each view is an equally valid prediction
        and their mean has less variance.

    Returns
    -------
    particle : numpy.ndarray
        Particle probability map, same shape as ``image``.
    regions : numpy.ndarray or None
        ``(4, rows, cols)`` region probabilities, None for ``disks``.
    """
    if augment not in (1, 2, 4, 8):
        msg = f"augment must be 1, 2, 4 or 8 views, got {augment}"
        raise InputError(msg)
    particle, regions = [], []
    for view in range(augment):
        turns, flip = view % 4, view >= 4
        viewed = np.rot90(image[:, ::-1] if flip else image, turns)
        p, r = _predict_view(model, np.ascontiguousarray(viewed), target)
        p = np.rot90(p, -turns)
        r = None if r is None else np.rot90(r, -turns, axes=(1, 2))
        if flip:
            p, r = p[:, ::-1], (None if r is None else r[:, :, ::-1])
        particle.append(p)
        regions.append(r)
    mean_regions = None if regions[0] is None else np.mean(regions, axis=0)
    return np.ascontiguousarray(np.mean(particle, axis=0)), mean_regions


def _predict_view(model, image, target):
    import torch
    from torch.nn import functional as F

    depth = len(model.down) - 1
    multiple = 2**depth
    rows, cols = image.shape
    pad_r, pad_c = (-rows) % multiple, (-cols) % multiple
    x = torch.from_numpy(np.pad(image, ((0, pad_r), (0, pad_c)), mode="reflect"))[None, None]
    with torch.inference_mode():
        out = model(x)[0, :, :rows, :cols]
        if target == "disks":
            return torch.sigmoid(out[0]).numpy(), None
        if target == "regions":
            regions = F.softmax(out, dim=0)
            return regions[REGION_CLASSES.index("protein")].numpy(), regions.numpy()
        return torch.sigmoid(out[0]).numpy(), F.softmax(out[1:], dim=0).numpy()


def find_picks(particle, regions, diameter, threshold, nms_fraction=0.6, edge_fraction=0.0):
    """Turn a particle probability map into scored picks.

    Parameters
    ----------
    particle : numpy.ndarray
        Probability map.
    regions : numpy.ndarray or None
        ``(4, rows, cols)`` region probabilities; picks whose most likely
        region is ice or carbon are dropped.
    diameter : float
        Particle diameter in pixels of the map.
    threshold : float
        Minimum probability at a pick.
    nms_fraction : float
        Picks closer than ``nms_fraction * diameter`` to a better pick are
        suppressed; below 1 because particles in a crowded micrograph touch
        and their centres can be a little closer than one diameter.
    edge_fraction : float
        Picks closer than ``edge_fraction * diameter`` to the image edge are
        dropped: a particle cut by the edge cannot be extracted, and
        micrograph borders carry processing artefacts.

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y``, ``score``, best first, in the map's pixel frame.

    Examples
    --------
    >>> m = np.zeros((32, 32)); m[10, 12] = 0.9; m[11, 12] = 0.8; m[25, 5] = 0.7
    >>> find_picks(m, None, 6.0, 0.5)[["x", "y"]].values.tolist()
    [[12.0, 10.0], [5.0, 25.0]]
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    # a light blur turns the mask's plateau into one peak per particle
    smooth = ndimage.gaussian_filter(particle, max(diameter / 10, 0.5))
    peaks = (smooth == ndimage.maximum_filter(smooth, size=3)) & (particle >= threshold)
    margin = edge_fraction * diameter
    if margin > 0:
        inside = np.zeros_like(peaks)
        low = int(np.ceil(margin))
        high_r, high_c = particle.shape[0] - 1 - margin, particle.shape[1] - 1 - margin
        inside[low:int(np.floor(high_r)) + 1, low:int(np.floor(high_c)) + 1] = True
        peaks &= inside
    rows, cols = np.nonzero(peaks)
    scores = particle[rows, cols]
    if regions is not None and len(rows):
        region = regions[:, rows, cols].argmax(axis=0)
        allowed = ~np.isin(region, [REGION_CLASSES.index(name) for name in EXCLUDED_REGIONS])
        rows, cols, scores = rows[allowed], cols[allowed], scores[allowed]
    order = np.argsort(-scores, kind="stable")
    rows, cols, scores = rows[order], cols[order], scores[order]
    points = np.column_stack([cols, rows]).astype(np.float64)
    keep = np.ones(len(points), dtype=bool)
    if len(points):
        tree = cKDTree(points)
        for i, neighbours in enumerate(tree.query_ball_point(points, nms_fraction * diameter)):
            if keep[i]:
                for j in neighbours:
                    if j > i:
                        keep[j] = False
    return pd.DataFrame({"x": points[keep, 0], "y": points[keep, 1], "score": scores[keep].astype(np.float64)})


def match_picks(picks, truth, radius):
    """One-to-one matching of picks to true centres within ``radius``.

    The matching maximises the number of pairs (then minimises their total
    distance) with the Hungarian algorithm, so no true particle is counted
    twice and a crowded micrograph is not scored optimistically.

    Parameters
    ----------
    picks, truth : pandas.DataFrame
        Columns ``x``, ``y``.
    radius : float
        Largest centre distance of a match (half a diameter, by convention).

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1`` and
        ``pairs`` (``(pick_index, truth_index)`` array).

    Examples
    --------
    >>> p = pd.DataFrame({"x": [0.0, 50.0], "y": [0.0, 0.0]})
    >>> t = pd.DataFrame({"x": [3.0], "y": [4.0]})
    >>> r = match_picks(p, t, 10.0); (r["tp"], r["fp"], r["fn"])
    (1, 1, 0)
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import cKDTree

    a = picks[["x", "y"]].to_numpy(dtype=np.float64)
    b = truth[["x", "y"]].to_numpy(dtype=np.float64)
    pairs = np.zeros((0, 2), dtype=np.int64)
    if len(a) and len(b):
        distances = cKDTree(a).sparse_distance_matrix(cKDTree(b), radius, output_type="coo_matrix")
        rows, cols = distances.row, distances.col
        if len(rows):
            # only picks and truths with a candidate partner enter the
            # assignment; a large constant makes "no match" the last resort
            ui, ri = np.unique(rows, return_inverse=True)
            uj, rj = np.unique(cols, return_inverse=True)
            big = 1e6
            cost = np.full((len(ui), len(uj)), big)
            cost[ri, rj] = distances.data
            pi, pj = linear_sum_assignment(cost)
            good = cost[pi, pj] < big
            pairs = np.column_stack([ui[pi[good]], uj[pj[good]]])
    tp = len(pairs)
    fp, fn = len(a) - tp, len(b) - tp
    precision = tp / len(a) if len(a) else 0.0
    recall = tp / len(b) if len(b) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1, "pairs": pairs}


def pr_curve(pick_sets, truth_sets, radius, thresholds):
    """Precision, recall and F1 summed over micrographs, per score threshold.

    Parameters
    ----------
    pick_sets, truth_sets : list of pandas.DataFrame
        Picks (with ``score``) and truth, one pair per micrograph.
    radius : float
    thresholds : sequence of float

    Returns
    -------
    pandas.DataFrame
        ``threshold, tp, fp, fn, precision, recall, f1``.
    """
    rows = []
    for threshold in thresholds:
        tp = fp = fn = 0
        for picks, truth in zip(pick_sets, truth_sets):
            result = match_picks(picks[picks["score"] >= threshold], truth, radius)
            tp, fp, fn = tp + result["tp"], fp + result["fp"], fn + result["fn"]
        rows.append({"threshold": threshold, **summarise_counts(tp, fp, fn)})
    return pd.DataFrame(rows)


def summarise_counts(tp, fp, fn):
    """Precision, recall and F1 from pooled counts.

    Parameters
    ----------
    tp, fp, fn : int

    Returns
    -------
    dict
        ``tp, fp, fn, precision, recall, f1``.

    Examples
    --------
    >>> summarise_counts(8, 2, 2)["f1"]
    0.8
    """
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": round(f1, 12)}


class Picker:
    """A trained picking network with its task settings.

    Parameters
    ----------
    model : torch.nn.Module
    meta : dict
        Checkpoint metadata: ``target``, ``working_diameter``,
        ``threshold``, ``nms_fraction``, ``edge_fraction``, ``augment``.
    """

    def __init__(self, model, meta):
        missing = [k for k in ("target", "working_diameter") if k not in meta]
        if missing:
            msg = f"checkpoint is not a cryo-EM picker (metadata lacks {', '.join(missing)})"
            raise InputError(msg)
        from deepscope.core.speed import fold_batchnorm

        self.model = fold_batchnorm(model.eval())
        self.target = meta["target"]
        self.working_diameter = float(meta["working_diameter"])
        self.threshold = float(meta.get("threshold", 0.5))
        self.nms_fraction = float(meta.get("nms_fraction", 0.6))
        self.edge_fraction = float(meta.get("edge_fraction", 0.0))
        self.augment = int(meta.get("augment", 1))
        # Names of the micrographs that trained or tuned it: scoring on them is not a test.
        self.seen_micrographs = frozenset(meta.get("train_micrographs", ())) | frozenset(
            meta.get("val_micrographs", ()))
        # Where the weights came from (set by from_checkpoint): identifies resumable pick jobs.
        self.checkpoint = None

    @classmethod
    def from_checkpoint(cls, source=None):
        """Load a picker from a checkpoint or run dir; the shipped one if None.

        Parameters
        ----------
        source : str or Path, optional

        Returns
        -------
        Picker
        """
        from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint, shipped_checkpoint

        source = source if source is not None else shipped_checkpoint(SHIPPED_NAME)
        record = load_checkpoint(source)
        picker = cls(model_from_checkpoint(record), record.get("meta", {}))
        picker.checkpoint = source
        return picker

    def maps(self, image):
        """Particle and region probability maps of a working-scale image."""
        return predict_maps(self.model, image, self.target, self.augment)

    def pick(self, image, scale, threshold=None, keep_maps=False):
        """Pick particles in a working-scale image.

        Parameters
        ----------
        image : numpy.ndarray
            Normalised image at working scale.
        scale : float
            Working pixels per original pixel; returned coordinates are
            divided by it (original frame, pixel centres).
        threshold : float, optional
            Defaults to the threshold tuned on the validation micrographs.
        keep_maps : bool
            Also return the probability maps.

        Returns
        -------
        picks : pandas.DataFrame
            ``x``, ``y``, ``score`` in the original micrograph's pixels.
        maps : tuple, only if ``keep_maps``
            ``(particle, regions)`` at working scale.
        """
        particle, regions = self.maps(image)
        picks = find_picks(particle, regions, self.working_diameter,
                           self.threshold if threshold is None else threshold, self.nms_fraction,
                           self.edge_fraction)
        # working pixel i covers original pixels [i/scale, (i+1)/scale):
        # its centre is at (i + 0.5)/scale - 0.5 in pixel-centre coordinates
        picks["x"] = (picks["x"] + 0.5) / scale - 0.5
        picks["y"] = (picks["y"] + 0.5) / scale - 0.5
        return (picks, (particle, regions)) if keep_maps else picks


SHIPPED_NAME = "cryoem_empiar10017.pt"


def pair_micrographs(micrographs, coordinate_files, what="coordinate"):
    """Pair micrograph files with coordinate files by file stem.

    Parameters
    ----------
    micrographs : list of Path
    coordinate_files : dict of str -> Path
        From :func:`deepscope.cryoem.io.coordinate_files_by_stem`.
    what : str
        Word for error messages.

    Returns
    -------
    list of (Path, Path)

    Raises
    ------
    InputError
        If a coordinate file names no micrograph, or no pair is found.
    """
    stems = {p.stem: p for p in micrographs}
    orphans = sorted(set(coordinate_files) - set(stems))
    if orphans:
        msg = (f"{coordinate_files[orphans[0]]}: {what} file matches no micrograph "
               f"({len(orphans)} such file(s); names must equal the micrograph stems)")
        raise InputError(msg)
    pairs = [(stems[s], coordinate_files[s]) for s in sorted(stems) if s in coordinate_files]
    if not pairs:
        msg = f"no micrograph has a {what} file with the same stem"
        raise InputError(msg)
    return pairs


def load_training_item(micrograph, coords, diameter, working_diameter, mask_fraction=0.5,
                       labels=None, coords_flip_y=False, labels_flip_y=False, enhance="auto"):
    """Read one micrograph with its targets at working scale.

    Parameters
    ----------
    micrograph, coords : Path
        Micrograph and its particle-centre file.
    diameter : float
        Particle diameter in the micrograph's pixels.
    working_diameter : float
    mask_fraction : float
        Target disks have ``mask_fraction`` times the particle diameter, so
        touching particles stay separate blobs.
    labels : Path, optional
        CASSPER colour label image.
    coords_flip_y, labels_flip_y : bool
        Whether coordinates / labels are stored upside down relative to the
        micrograph (e.g. MRC frame versus EMPIAR-10017 JPEGs).
    enhance : {"auto", "on", "off"}

    Returns
    -------
    dict
        ``name``, ``image``, ``mask``, ``regions``, ``truth`` (working-scale
        centres) and ``scale``.
    """
    from deepscope.cryoem.io import flip_y, read_coordinates, read_region_labels
    from deepscope.cryoem.preprocess import load_for_picking

    image, scale, shape = load_for_picking(micrograph, diameter, working_diameter, enhance)
    table = read_coordinates(coords)
    if coords_flip_y:
        table = flip_y(table, shape[0])
    truth = pd.DataFrame({"x": (table["x"] + 0.5) * scale - 0.5, "y": (table["y"] + 0.5) * scale - 0.5})
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


def tune_picking(picker, items, radius_fraction=0.5):
    """Choose the threshold, NMS distance and edge margin that maximise F1 on ``items``.

    Parameters
    ----------
    picker : Picker
    items : list of dict
        Validation micrographs from :func:`load_training_item`.
    radius_fraction : float
        Match radius as a fraction of the diameter.

    Returns
    -------
    dict
        ``threshold``, ``nms_fraction``, ``edge_fraction`` and the
        validation ``f1``.
    """
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


def train_picker(micrographs, coords_dir, diameter, run_dir, config, target="joint", labels_dir=None,
                 coords_flip_y=False, labels_flip_y=False, val_names=None, working_diameter=WORKING_DIAMETER,
                 mask_fraction=0.5, patch=128, patches_per_epoch=256, enhance="auto", resume=False,
                 exclude=(), augment=1):
    """Train a picking U-Net on micrographs with particle coordinates.

    Parameters
    ----------
    micrographs : list of Path
    coords_dir : Path
        Particle-centre files named after the micrographs.
    diameter : float
        Particle diameter in micrograph pixels.
    run_dir : Path
    config : deepscope.config.TrainConfig
        ``model_kwargs`` go to the U-Net (``width``, ``depth``).
    target : {"disks", "regions", "joint"}
        Which heads to train; ``regions`` and ``joint`` need ``labels_dir``.
    labels_dir : Path, optional
        CASSPER label PNGs named after the micrographs.
    coords_flip_y, labels_flip_y : bool
        See :func:`load_training_item`.
    val_names : list of str, optional
        Micrograph stems held out for validation (early stopping and
        threshold tuning); default: ``config.val_fraction`` of them, seeded.
    working_diameter, mask_fraction, patch, patches_per_epoch, enhance
        See :func:`load_training_item` and :class:`PatchDataset`.
    resume : bool
    exclude : iterable of str
        Micrograph stems left out entirely (the test set).
    augment : int
        Test-time views used when picking (see :func:`predict_maps`); the
        threshold is tuned for them.

    Returns
    -------
    dict
        ``fit`` (:class:`~deepscope.core.trainer.FitResult`), ``tuning``
        (threshold, NMS, validation F1), ``train`` and ``val`` stems.
    """
    from pathlib import Path

    from deepscope.core.checkpoint import BEST_NAME, load_checkpoint, model_from_checkpoint
    from deepscope.core.distributed import process_info
    from deepscope.core.files import atomic_path
    from deepscope.core.trainer import fit
    from deepscope.cryoem.io import coordinate_files_by_stem

    if target not in TARGETS:
        msg = f"unknown target {target!r}; use one of {', '.join(TARGETS)}"
        raise InputError(msg)
    if target != "disks" and labels_dir is None:
        msg = f"target {target!r} needs --labels (CASSPER region label images)"
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

    items = []
    for micrograph, coords in pairs:
        log.info("loading %s", micrograph.name)
        items.append(load_training_item(micrograph, coords, diameter, working_diameter, mask_fraction,
                                        label_files.get(micrograph.stem), coords_flip_y, labels_flip_y,
                                        enhance))
    train_items = [i for i in items if i["name"] not in val_set]
    val_items = [i for i in items if i["name"] in val_set]
    patch = min(patch, *(min(i["image"].shape) for i in items))
    patch -= patch % 2 ** config.model_kwargs.get("depth", 3)
    meta = {"target": target, "working_diameter": working_diameter, "diameter": diameter,
            "mask_fraction": mask_fraction, "threshold": 0.5, "nms_fraction": 0.6, "augment": augment,
            "train_micrographs": sorted(i["name"] for i in train_items),
            "val_micrographs": sorted(i["name"] for i in val_items)}
    result = fit(TARGETS[target], config.model_kwargs, PatchDataset(train_items, patch, patches_per_epoch),
                 PatchDataset(val_items, patch, 0, random=False), make_loss(target), config, run_dir,
                 meta=meta, resume=resume)

    record = load_checkpoint(Path(run_dir) / BEST_NAME)
    tuning = tune_picking(Picker(model_from_checkpoint(record), meta), val_items)
    log.info("validation F1 %.3f at threshold %.2f, NMS %.1f d, edge %.1f d", tuning["f1"], tuning["threshold"],
             tuning["nms_fraction"], tuning["edge_fraction"])
    record["meta"].update(threshold=tuning["threshold"], nms_fraction=tuning["nms_fraction"],
                          edge_fraction=tuning["edge_fraction"], val_f1=tuning["f1"])
    import torch

    if process_info().is_primary:  # under torchrun only rank 0 writes
        with atomic_path(Path(run_dir) / BEST_NAME) as tmp:
            torch.save(record, tmp)
    return {"fit": result, "tuning": tuning, "train": meta["train_micrographs"], "val": meta["val_micrographs"]}
