"""A trained galaxy classifier: checkpoint + task metadata -> prediction rows."""

import copy
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from deepscope.core.checkpoint import load_checkpoint, model_from_checkpoint, shipped_checkpoint
from deepscope.core.speed import prepare_for_inference
from deepscope.errors import DeepscopeError, ModelError
from deepscope.galaxy.io import read_galaxy_image
from deepscope.galaxy.task import bright_pixel_count, to_model_input

log = logging.getLogger(__name__)

# Models that ship inside the package, by the name `--model` accepts.
SHIPPED_MODELS = {"galaxy_bars": "galaxy_bars.pt", "galaxy_morphology": "galaxy_morphology.pt"}
DEFAULT_MODEL = "galaxy_bars"

# Output column of the positive-class probability, where the issue fixes one.
_PROBABILITY_COLUMNS = {("barred", "1"): "p_bar"}


def resolve_model_path(model):
    """Path of the checkpoint that ``--model`` names.

    Parameters
    ----------
    model : str or None
        ``None`` (the shipped bar model), a shipped model name, a run
        directory or a ``.pt`` file.

    Returns
    -------
    Path

    Raises
    ------
    ModelError
        If ``model`` is neither a shipped name nor an existing path.
    """
    model = model or DEFAULT_MODEL
    if model in SHIPPED_MODELS:
        return shipped_checkpoint(SHIPPED_MODELS[model])
    path = Path(model)
    if not path.exists():
        msg = f"{model}: no such run directory or checkpoint; shipped models: {', '.join(SHIPPED_MODELS)}"
        raise ModelError(msg)
    return path


class GalaxyClassifier:
    """A network with the class names, input size and threshold it was trained with.

    Parameters
    ----------
    model : torch.nn.Module
        Kept as trained in ``model`` (for feature maps and fine-tuning);
        predictions use a BatchNorm-folded, channels-last copy.
    meta : dict
        ``target``, ``class_names``, ``input_size`` and ``threshold``.
    """

    def __init__(self, model, meta):
        missing = {"target", "class_names", "input_size", "threshold"} - set(meta)
        if missing:
            msg = f"checkpoint is not a galaxy classifier (no {', '.join(sorted(missing))} in its metadata)"
            raise ModelError(msg)
        self.model = model.eval()
        self.fast_model = prepare_for_inference(copy.deepcopy(model))
        self.target = meta["target"]
        self.class_names = list(meta["class_names"])
        self.input_size = int(meta["input_size"])
        self.threshold = float(meta["threshold"])

    @classmethod
    def load(cls, model=None):
        """Load a shipped model, run directory or checkpoint file (see :func:`resolve_model_path`)."""
        record = load_checkpoint(resolve_model_path(model))
        return cls(model_from_checkpoint(record), record.get("meta", {}))

    @property
    def binary(self):
        """Whether this is a two-class task with a tuned threshold."""
        return len(self.class_names) == 2

    @property
    def probability_column(self):
        """Name of the output column holding the positive-class probability."""
        positive = self.class_names[-1]
        return _PROBABILITY_COLUMNS.get((self.target, positive), f"p_{positive}")

    def load_input(self, path):
        """Read one file and shape it for the network."""
        return to_model_input(read_galaxy_image(path), self.input_size)

    def probabilities(self, batch):
        """Class probabilities of a float32 batch ``(N, 3, S, S)``.

        Returns
        -------
        numpy.ndarray of shape (N, n_classes)
        """
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).contiguous(memory_format=torch.channels_last)
            return torch.softmax(self.fast_model(x), dim=1).numpy()

    def decide(self, probs):
        """Class indices from probabilities (the tuned threshold for two classes)."""
        if self.binary:
            return (probs[:, 1] >= self.threshold).astype(int)
        return probs.argmax(axis=1)

    def label_value(self, index):
        """The label as users wrote it: an int for numeric classes, else the name."""
        name = self.class_names[index]
        return int(name) if name.lstrip("-").isdigit() else name

    def rows(self, arrays):
        """Prediction rows for a list of model inputs (see :meth:`load_input`).

        Returns
        -------
        list of dict
            For two classes: the positive probability column (``p_bar``
            for bars) and the target column at the threshold; otherwise one
            ``p_<class>`` column per class and the target column.
        """
        probs = self.probabilities(np.stack(arrays))
        decisions = self.decide(probs)
        rows = []
        for p, decision in zip(probs, decisions):
            if self.binary:
                row = {self.probability_column: round(float(p[1]), 6)}
            else:
                row = {f"p_{name}": round(float(v), 6) for name, v in zip(self.class_names, p)}
            row[self.target] = self.label_value(decision)
            rows.append(row)
        return rows


def load_cutouts(paths, size, workers=2, progress=True):
    """Decode many cutouts into one model-input array, in parallel.

    Parameters
    ----------
    paths : sequence of str or Path
    size : int
        Model input side.
    workers : int
        Decoding threads.
    progress : bool

    Returns
    -------
    images : numpy.ndarray
        ``float32`` ``(N_good, 3, size, size)``.
    sizes : numpy.ndarray of int
        Apparent size of each good cutout (:func:`~deepscope.galaxy.task.bright_pixel_count`).
    failures : list of (str, str)
        ``(path, reason)`` of the files that could not be read.
    """
    from deepscope.core.progress import progress_bar

    def load(path):
        try:
            rgb = read_galaxy_image(path)
            return to_model_input(rgb, size), int(bright_pixel_count(rgb)), None
        except DeepscopeError as exc:
            return None, None, str(exc)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(progress_bar(pool.map(load, paths), enabled=progress, total=len(paths),
                                    desc="reading cutouts", unit="file"))
    failures = [(str(p), error) for p, (_, _, error) in zip(paths, results) if error is not None]
    good = [(array, n) for array, n, error in results if error is None]
    images = np.stack([a for a, _ in good]) if good else np.zeros((0, 3, size, size), np.float32)
    return images, np.array([n for _, n in good], dtype=int), failures
