"""MK classification as a learning task: targets, loss, metrics, predictions.

A type gives up to two targets: the temperature index ``t = 10*(A1-1) + A2``
(classified over 70 subclass bins with soft labels, read back at half-subclass
resolution) and the luminosity class (classified, I ... VI). The loss uses
what a catalogue string knows: a full type trains both heads; ``'Am'`` or
``'G:w?'`` (main class only) spreads its temperature target over its main
class; ``'M6Svar'`` trains the temperature head alone;
``'sd:F'`` trains the luminosity head and the main-class interval. Strings
with no O-M type (``'HB'``, ``'L0'``) are left out, and counted.
"""

import logging
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from deepscope.config import TrainConfig
from deepscope.errors import DeepscopeError, FormatError, InputError
from deepscope.spectra.mktype import (
    LUM_NAMES,
    MAIN_CLASSES,
    N_LUM,
    N_T_BINS,
    format_type,
    index_to_parts,
    parse_mk,
    type_to_code,
)
from deepscope.spectra.preprocess import Grid, prepare

log = logging.getLogger(__name__)

DEFAULT_CONFIG = TrainConfig(
    model="spectra_cnn",  # best of ANN, CNN and AE on the leave-one-library-out table
    epochs=60,  # small data: an epoch takes seconds on CPU
    batch_size=32,  # about 1000 training spectra; smaller batches generalise better here
    lr=2e-3,
    weight_decay=1e-3,  # stronger than the default: libraries differ, spectra within one do not
    patience=15,
    val_fraction=0.15,
    # One thread: these networks are small, and on a shared two-core machine
    # two spinning OpenMP threads made an epoch ten times slower (measured).
    threads=1,
)
# MKCLASS libr18 ends here (Angstrom): blue classification spectra like it are
# common, so every training spectrum also trains as if it stopped there.
SHORT_RED_LIMIT = 4620.0
SHIPPED_NAME = "spectra_mk.pt"
CLASSIFIER_MODELS = ("spectra_ann", "spectra_cnn", "spectra_ae_classifier", "spectra_ensemble")
OUTPUT_COLUMNS = ("sptype", "main_class", "subclass", "lum_class", "code", "temperature_index")


def type_targets(sptypes):
    """Training targets for catalogue type strings.

    Parameters
    ----------
    sptypes : sequence of str

    Returns
    -------
    dict of numpy.ndarray
        ``usable`` (bool, a type was parsed), ``t`` (temperature index, 0
        where unknown), ``t_known``, ``lo``/``hi`` (interval the index must
        lie in), ``lum`` (``(N, N_LUM)`` soft labels: ``IV-V`` is half IV,
        half V), ``lum_known``.
    """
    n = len(sptypes)
    out = {"usable": np.zeros(n, bool), "t": np.zeros(n, np.float32), "t_known": np.zeros(n, np.float32),
           "lo": np.zeros(n, np.float32), "hi": np.zeros(n, np.float32),
           "lum": np.zeros((n, N_LUM), np.float32), "lum_known": np.zeros(n, np.float32)}
    for i, text in enumerate(sptypes):
        mk = parse_mk(text)
        if mk is None:
            continue
        out["usable"][i] = True
        base = 10.0 * (mk.a1 - 1)
        out["lo"][i], out["hi"][i] = base, base + 9.5
        if mk.subclass is not None:
            out["t"][i], out["t_known"][i] = mk.temperature_index, 1.0
        if mk.lum_class is not None:
            low, high = math.floor(mk.lum_class), math.ceil(mk.lum_class)
            out["lum"][i, low - 1] += 0.5
            out["lum"][i, high - 1] += 0.5
            out["lum_known"][i] = 1.0
    return out


def t_target_distribution(targets, sigma=1.0):
    """Soft labels over the temperature bins (torch).

    A known index becomes a Gaussian of ``sigma`` subclasses around it (so
    neighbouring subclasses are near misses, not plain errors); a type known
    only to its main class spreads evenly over that class's bins.
    """
    import torch

    bins = torch.arange(N_T_BINS, dtype=targets["t"].dtype, device=targets["t"].device)
    gauss = torch.exp(-0.5 * ((bins[None, :] - targets["t"][:, None]) / sigma) ** 2)
    inside = ((bins[None, :] >= targets["lo"][:, None]) & (bins[None, :] <= targets["hi"][:, None])).to(gauss.dtype)
    dist = torch.where(targets["t_known"][:, None] > 0, gauss, inside)
    return dist / dist.sum(dim=1, keepdim=True).clamp(min=1e-12)


def spectra_loss(outputs, targets):
    """Loss of classifier outputs against :func:`type_targets` (as tensors).

    Soft-label cross-entropy over temperature bins (see
    :func:`t_target_distribution`) and, where it is known, over luminosity
    classes. An optional per-star weight ``w`` scales the temperature term.

    Parameters
    ----------
    outputs : torch.Tensor
        ``(batch, N_T_BINS + N_LUM)``.
    targets : dict of torch.Tensor

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    import torch
    import torch.nn.functional as F

    t_log_p = F.log_softmax(outputs[:, :N_T_BINS], dim=1)
    per_star = -(t_target_distribution(targets) * t_log_p).sum(dim=1)
    weight = targets.get("w", torch.ones_like(per_star))
    t_loss = (weight * per_star).sum() / weight.sum().clamp(min=1e-6)
    log_p = F.log_softmax(outputs[:, N_T_BINS:], dim=1)
    ce = -(targets["lum"] * log_p).sum(dim=1)
    lum_loss = (ce * targets["lum_known"]).sum() / targets["lum_known"].sum().clamp(min=1.0)
    return t_loss + lum_loss


def t_index_from_logits(logits, window=2):
    """Temperature index from bin logits: mean of the peak and its neighbours.

    Averaging only within ``window`` bins of the most probable one gives
    half-subclass resolution without averaging two separate modes (an
    O9/B0 spectrum must not come out as O4).

    Parameters
    ----------
    logits : numpy.ndarray
        ``(N, N_T_BINS)``.
    window : int

    Returns
    -------
    numpy.ndarray
    """
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    peak = p.argmax(axis=1)
    bins = np.arange(logits.shape[1])
    near = np.abs(bins[None, :] - peak[:, None]) <= window
    weights = p * near
    return (weights * bins).sum(axis=1) / weights.sum(axis=1)


def main_class_weights(lo, cap=5.0):
    """Per-star weights that balance main classes (capped, mean 1).

    Libraries hold few O and M stars; unweighted, a regressor pulls them
    towards B and K (measured: O stars held out came out as B).

    Parameters
    ----------
    lo : numpy.ndarray
        Start of each star's main-class interval (``type_targets()["lo"]``).
    cap : float
        Largest weight relative to the most common class.

    Returns
    -------
    numpy.ndarray of float32
    """
    _, inverse, counts = np.unique(lo, return_inverse=True, return_counts=True)
    weight = np.minimum(counts.max() / counts, cap)[inverse]
    return (weight / weight.mean()).astype(np.float32)


def spectra_score(outputs, targets):
    """Validation score (higher is better): minus subclass error and luminosity errors."""
    outputs = outputs.numpy()
    t_hat = t_index_from_logits(outputs[:, :N_T_BINS])
    known = targets["t_known"].numpy() > 0
    mae = float(np.abs(t_hat - targets["t"].numpy())[known].mean()) if known.any() else 0.0
    lum_known = targets["lum_known"].numpy() > 0
    pred = outputs[:, N_T_BINS:].argmax(1)
    hit = targets["lum"].numpy()[np.arange(len(pred)), pred] > 0
    lum_err = float(1 - hit[lum_known].mean()) if lum_known.any() else 0.0
    # One luminosity-class error weighs as much as three subclasses.
    return -(mae + 3.0 * lum_err)


def without_path(path, message):
    """A file's error message without its leading ``path:``, for batch lists that name the file already."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def load_prepared(paths, grid=Grid(), min_coverage=0.4, workers=2, progress=False, short=False):
    """Read and prepare many spectra; bad files are reported, not fatal.

    Parameters
    ----------
    paths : sequence of str or Path
    grid : Grid
    min_coverage : float
    workers : int
        Reader threads.
    progress : bool
    short : bool
        Also prepare each spectrum, from the same read, as if it ended at
        :data:`SHORT_RED_LIMIT` (its short copy for training).

    Returns
    -------
    x : numpy.ndarray
        ``(n_good, 2, grid.n)`` float32.
    good : numpy.ndarray of int
        Index into ``paths`` of each row of ``x``.
    failures : list of (str, str)
    short_x : numpy.ndarray
        Only with ``short``: the short copies, aligned with ``x``; a
        spectrum with too little data blueward of the limit keeps its full
        version.
    """
    from deepscope.core.progress import progress_bar

    from deepscope.spectra.io import read_spectrum

    def short_copy(spectrum, full):
        try:
            return prepare(spectrum, grid, min_coverage, red_limit=SHORT_RED_LIMIT)
        except FormatError:  # too little data blueward of the limit
            return full

    def load(path):
        try:
            spectrum = read_spectrum(path)
            full = prepare(spectrum, grid, min_coverage, path=str(path))
        except DeepscopeError as exc:
            return None, None, str(exc)
        return full, short_copy(spectrum, full) if short else None, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(progress_bar(pool.map(load, paths), enabled=progress, total=len(paths),
                                    desc="read spectra", leave=False))
    arrays, shorts, good, failures = [], [], [], []
    for i, (array, short_array, error) in enumerate(results):
        if error is None:
            arrays.append(array)
            shorts.append(short_array)
            good.append(i)
        else:
            failures.append((str(paths[i]), without_path(paths[i], error)))

    def stacked(rows):
        return np.stack(rows) if rows else np.zeros((0, 2, grid.n), np.float32)

    loaded = stacked(arrays), np.asarray(good, int), failures
    return (*loaded, stacked(shorts)) if short else loaded


def _blur(flux, mask, sigma):
    """Mask-aware Gaussian blur of one torch spectrum (``sigma`` in pixels)."""
    import torch
    import torch.nn.functional as F

    half = int(3 * sigma) + 1
    kernel = torch.exp(-0.5 * (torch.arange(-half, half + 1, dtype=flux.dtype) / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    total = F.conv1d((flux * mask).view(1, 1, -1), kernel, padding=half).view(-1)
    weight = F.conv1d(mask.view(1, 1, -1), kernel, padding=half).view(-1)
    return torch.where(weight > 0, total / weight.clamp(min=1e-6), torch.zeros_like(flux)) * mask


def make_dataset(x, targets=None, augment=False):
    """A torch dataset of prepared spectra and their targets.

    Parameters
    ----------
    x : numpy.ndarray
        ``(N, 2, n)``.
    targets : dict of numpy.ndarray, optional
        From :func:`type_targets`; ``None`` for autoencoder training, where
        the target is the input's flux row.
    augment : bool
        Add noise (SNR 15 to 200), shift by up to one pixel, tilt the
        continuum slightly, blur half the spectra (0.5 to 3 pixels: libraries
        differ in resolution even after smoothing to a common one) and, for
        one spectrum in five, cut the red end as libr18's 3800-4620 A
        coverage does, so a model trained on full spectra still reads short
        ones.

    Returns
    -------
    torch.utils.data.Dataset
    """
    import torch
    from torch.utils.data import Dataset

    class _Spectra(Dataset):
        def __init__(self):
            self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            self.y = None if targets is None else {
                k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in targets.items() if k != "usable"}

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            item = self.x[i]
            clean = item[0]
            if augment:
                item = item.clone()
                shift = int(torch.randint(-1, 2, ()).item())
                if shift:
                    item = torch.roll(item, shift, dims=1)
                    item[:, 0 if shift > 0 else -1] = 0.0
                if torch.rand(()) < 0.2:
                    cut = int(item.shape[1] * (0.45 + 0.5 * float(torch.rand(()))))
                    item[:, cut:] = 0.0
                if torch.rand(()) < 0.5:
                    item[0] = _blur(item[0], item[1], 0.5 + 2.5 * float(torch.rand(())))
                # A gentle tilt stands in for how differently libraries'
                # continua come out of normalisation.
                ramp = torch.linspace(-1.0, 1.0, item.shape[1])
                tilt = 1.0 + 0.05 * float(torch.randn(())) * ramp + 0.03 * float(torch.randn(())) * (ramp ** 2 - 0.33)
                item[0] = ((1.0 + item[0]) * tilt - 1.0) * item[1]
                sigma = 1.0 / (15.0 + 185.0 * float(torch.rand(())))
                item[0] = (item[0] + sigma * torch.randn_like(item[0])) * item[1]
            if self.y is None:
                return item, torch.stack([clean, self.x[i][1]])
            return item, {k: v[i] for k, v in self.y.items()}

    return _Spectra()


def reconstruction_loss(outputs, targets):
    """Masked mean squared error of an autoencoder's flux reconstruction."""
    mask = targets[:, 1]
    return (((outputs - targets[:, 0]) ** 2) * mask).sum() / mask.sum().clamp(min=1.0)


def train_classifier(x, sptypes, run_dir, config=DEFAULT_CONFIG, grid=Grid(), min_coverage=0.4,
                     pool_x=None, pretrain_epochs=40, meta=None, progress=True, short_x=None):
    """Train a registered spectral classifier; returns the fit result.

    Parameters
    ----------
    x : numpy.ndarray
        Prepared labelled spectra ``(N, 2, grid.n)``.
    sptypes : sequence of str
        Their catalogue types; unparsable ones are dropped (and logged).
    run_dir : str or Path
    config : TrainConfig
        ``config.model`` is ``spectra_ann``, ``spectra_cnn`` or
        ``spectra_ae_classifier``.
    grid : Grid
    min_coverage : float
        Stored in the checkpoint so prediction applies the same rule.
    pool_x : numpy.ndarray, optional
        Unlabelled spectra for autoencoder pretraining (with ``x``, labels
        ignored); only used by ``spectra_ae_classifier``.
    pretrain_epochs : int
    meta : dict, optional
        Extra metadata for the checkpoint (training libraries ...).
    progress : bool
    short_x : numpy.ndarray, optional
        The same spectra prepared as if they ended at :data:`SHORT_RED_LIMIT`
        (``load_prepared(..., short=True)``); each trains and validates beside its full
        version, on the same side of the validation split.

    Returns
    -------
    deepscope.core.trainer.FitResult

    Raises
    ------
    InputError
        If fewer than ten spectra have a usable type.
    """
    import dataclasses
    from pathlib import Path

    import torch

    from deepscope.core.trainer import fit

    targets = type_targets(list(sptypes))
    usable = targets["usable"]
    if usable.sum() < 10:
        msg = f"only {int(usable.sum())} spectra have a usable MK type; need at least 10 to train"
        raise InputError(msg)
    if (~usable).any():
        log.info("left out %d spectra whose type is not an O-M MK type", int((~usable).sum()))
    x, sptypes = x[usable], [s for s, u in zip(sptypes, usable) if u]
    short_x = None if short_x is None else short_x[usable]
    targets = {k: v[usable] for k, v in targets.items()}
    targets["w"] = main_class_weights(targets["lo"])
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(x))
    n_val = max(1, int(round(config.val_fraction * len(x))))
    val, train = order[:n_val], order[n_val:]
    run_dir = Path(run_dir)
    model_kwargs = {"n_points": grid.n, **config.model_kwargs}

    if config.model == "spectra_ae_classifier" and "pretrained" not in config.model_kwargs:
        pool = x if pool_x is None else np.concatenate([x, pool_x])
        ae_config = dataclasses.replace(config, model="spectra_autoencoder", epochs=pretrain_epochs,
                                        model_kwargs={})
        ae_order = rng.permutation(len(pool))
        ae_val = ae_order[:max(1, len(pool) // 10)]
        ae_train = ae_order[len(ae_val):]
        log.info("pretraining the autoencoder on %d spectra (labels ignored)", len(pool))
        fit("spectra_autoencoder", {"n_points": grid.n}, make_dataset(pool[ae_train], augment=True),
            make_dataset(pool[ae_val]), reconstruction_loss, ae_config, run_dir / "pretrain",
            meta={"grid": grid.as_dict(), "min_coverage": min_coverage}, progress=progress)
        model_kwargs["pretrained"] = str(run_dir / "pretrain")

    templates = {"x": torch.from_numpy(x[train][:, 0]).half(), "mask": torch.from_numpy(x[train][:, 1] > 0),
                 "sptypes": [sptypes[i] for i in train]}
    full_meta = {"grid": grid.as_dict(), "min_coverage": min_coverage, "templates": templates, **(meta or {})}

    def part(rows):
        """Spectra and targets of some rows, with their short copies."""
        part_x = x[rows] if short_x is None else np.concatenate([x[rows], short_x[rows]])
        copies = 1 if short_x is None else 2
        return part_x, {k: np.concatenate([v[rows]] * copies) for k, v in targets.items() if k != "usable"}

    return fit(config.model, model_kwargs, make_dataset(*part(train), augment=True), make_dataset(*part(val)),
               spectra_loss, config, run_dir, score_fn=spectra_score, meta=full_meta, progress=progress)


def trained_model_kwargs(model_kwargs):
    """A trained classifier's keyword arguments without its pretrained-encoder path.

    That path only mattered at training time: the trained state dict
    replaces those weights, and the path may not exist where the model is
    loaded.
    """
    return {k: v for k, v in model_kwargs.items() if k != "pretrained"}


def load_model(path=None):
    """A trained classifier and its metadata; the shipped one by default.

    Parameters
    ----------
    path : str or Path, optional
        Checkpoint file or run directory.

    Returns
    -------
    model : torch.nn.Module
    meta : dict
        With ``grid`` (a :class:`Grid`), ``min_coverage`` and ``templates``.
    """
    from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint, shipped_checkpoint
    from deepscope.errors import ModelError

    record = load_checkpoint(path if path is not None else shipped_checkpoint(SHIPPED_NAME))
    meta = dict(record.get("meta", {}))
    if "grid" not in meta or record["model"] not in CLASSIFIER_MODELS:
        msg = f"{path}: not a spectral classifier checkpoint (model {record['model']!r})"
        raise ModelError(msg)
    model = model_from_checkpoint({**record, "model_kwargs": trained_model_kwargs(record.get("model_kwargs", {}))})
    meta["grid"] = Grid(**meta["grid"])
    return model, meta


def predict_outputs(model, x, batch_size=512):
    """Raw classifier outputs for prepared spectra.

    Parameters
    ----------
    model : torch.nn.Module
    x : numpy.ndarray
        ``(N, 2, n)``.
    batch_size : int

    Returns
    -------
    numpy.ndarray
        ``(N, N_T_BINS + N_LUM)``.
    """
    import torch

    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            outputs.append(model(torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size]))).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, N_T_BINS + N_LUM), np.float32)


def decode(t_index, lum_class):
    """Prediction rows from temperature indices and luminosity classes.

    Parameters
    ----------
    t_index : array-like of float
    lum_class : array-like of int
        1 (I) to 6 (VI).

    Returns
    -------
    list of dict
        Keys :data:`OUTPUT_COLUMNS`.

    Examples
    --------
    >>> decode([42.1], [5])[0]["sptype"], decode([42.1], [5])[0]["code"]
    ('G2V', 5211.5)
    """
    rows = []
    for t, lum in zip(t_index, lum_class):
        main, sub = index_to_parts(t)
        rows.append({"sptype": format_type(main, sub, int(lum)), "main_class": main, "subclass": sub,
                     "lum_class": LUM_NAMES[int(lum)], "code": type_to_code(MAIN_CLASSES.index(main) + 1, sub, lum),
                     "temperature_index": round(min(max(float(t), 0.0), 69.5), 2)})
    return rows


def outputs_to_rows(outputs):
    """Decode classifier outputs (see :mod:`deepscope.spectra.models`)."""
    return decode(t_index_from_logits(outputs[:, :N_T_BINS]), outputs[:, N_T_BINS:].argmax(1) + 1)


class TemplateMatcher:
    """Nearest library spectrum by chi-square on the common grid (baseline).

    Like PyHammer-style tools: every prepared template is compared with the
    spectrum over the pixels both cover; the temperature index comes from
    the nearest template whose subclass is known, the luminosity class from
    the nearest whose luminosity class is known.

    Parameters
    ----------
    x : numpy.ndarray
        Template fluxes ``(T, n)`` (row 0 of prepared spectra).
    mask : numpy.ndarray of bool
        ``(T, n)``.
    sptypes : sequence of str
    """

    def __init__(self, x, mask, sptypes):
        targets = type_targets(list(sptypes))
        self.x = np.asarray(x, np.float32) * mask
        self.mask = np.asarray(mask, np.float32)
        self.t = targets["t"]
        self.t_ok = targets["t_known"] > 0
        self.lum = targets["lum"].argmax(1) + 1
        self.lum_ok = targets["lum_known"] > 0
        # A template's luminosity is only a single class if it is not a range.
        self.lum_ok &= targets["lum"].max(1) > 0.75

    def chi2(self, x):
        """Mean squared difference over common pixels, ``(N, T)``."""
        flux, mask = x[:, 0], x[:, 1]
        w, y = self.mask, self.x
        common = mask @ w.T
        sq = (mask * flux ** 2) @ w.T - 2 * (mask * flux) @ y.T + mask @ (y ** 2).T
        with np.errstate(invalid="ignore", divide="ignore"):
            # Templates sharing under a third of the grid are no match at all.
            return np.where(common >= 0.3 * flux.shape[1], sq / np.maximum(common, 1), np.inf)

    def predict(self, x, batch_size=256):
        """Prediction rows for prepared spectra ``(N, 2, n)``."""
        rows = []
        for start in range(0, len(x), batch_size):
            d = self.chi2(np.asarray(x[start:start + batch_size], np.float32))
            t = self.t[np.argmin(np.where(self.t_ok, d, np.inf), axis=1)]
            lum = self.lum[np.argmin(np.where(self.lum_ok, d, np.inf), axis=1)]
            rows += decode(t, lum)
        return rows

    @classmethod
    def from_meta(cls, meta):
        """The baseline built from a checkpoint's training spectra."""
        templates = meta["templates"]
        return cls(templates["x"].float().numpy(), templates["mask"].numpy(), templates["sptypes"])


def score_predictions(sptypes, predicted):
    """Compare predictions with catalogue types.

    Parameters
    ----------
    sptypes : sequence of str
        True catalogue types.
    predicted : pandas.DataFrame
        With ``main_class``, ``temperature_index`` and ``lum_class``.

    Returns
    -------
    metrics : dict
        ``n``, ``main_class_accuracy``, ``subclass_mae``,
        ``within_one_subclass``, ``lum_class_accuracy`` (and their counts).
    detail : pandas.DataFrame
        Per spectrum: true and predicted main class, index, luminosity class.
    """
    import pandas as pd

    lum_number = {v: k for k, v in LUM_NAMES.items()}
    rows = []
    for text, (_, pred) in zip(sptypes, predicted.iterrows()):
        mk = parse_mk(text)
        if mk is None:
            continue
        p_lum = lum_number[pred["lum_class"]]
        true_lum = None
        if mk.lum_class is not None:
            # For a range ('IV-V') either end counts as right.
            options = {math.floor(mk.lum_class), math.ceil(mk.lum_class)}
            true_lum = p_lum if p_lum in options else round(mk.lum_class + 1e-9)
        rows.append({"true_main": mk.main_class, "pred_main": pred["main_class"],
                     "true_t": mk.temperature_index, "pred_t": float(pred["temperature_index"]),
                     "true_lum": true_lum, "pred_lum": p_lum})
    detail = pd.DataFrame(rows)
    if detail.empty:
        msg = "no spectrum has a usable MK type to score against"
        raise InputError(msg)
    t_rows = detail.dropna(subset=["true_t"])
    # The reported subclass is rounded to 0.5, so the error is measured on it.
    err = np.abs(np.round(2 * t_rows["pred_t"].clip(0, 69.5)) / 2 - t_rows["true_t"])
    lum_rows = detail.dropna(subset=["true_lum"])
    metrics = {
        "n": len(detail),
        "main_class_accuracy": float((detail["true_main"] == detail["pred_main"]).mean()),
        "n_subclass": len(t_rows),
        "subclass_mae": float(err.mean()) if len(t_rows) else math.nan,
        "within_one_subclass": float((err <= 1.0).mean()) if len(t_rows) else math.nan,
        "n_lum": len(lum_rows),
        "lum_class_accuracy": float((lum_rows["true_lum"] == lum_rows["pred_lum"]).mean())
        if len(lum_rows) else math.nan,
    }
    return metrics, detail
