"""Labelled cutouts in memory: parallel decoding, and a torch dataset with augmentation.

:func:`load_cutouts` feeds both training and evaluation (every cutout of a
split at once, with its apparent size); :class:`CutoutDataset` serves them to
:func:`deepscope.core.trainer.fit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from deepscope.errors import DeepscopeError
from deepscope.galaxy.apparent_size import bright_pixel_count
from deepscope.galaxy.io import read_galaxy_image
from deepscope.galaxy.preprocess import to_model_input
from deepscope.galaxy.zoom import sky_level_and_noise, transform_cutouts

# Zooms drawn in training unless told otherwise: a little either way of the cutouts as cut.
DEFAULT_ZOOM_RANGE = (1 / 1.1, 1.1)


def load_cutouts(paths: Sequence[str | Path], size: int, workers: int = 2,
                 progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Decode many cutouts into one model-input array, in parallel.

    ``size`` is the model input side; ``workers`` decoding threads (the image
    decoders release the GIL). Returns the ``float32 (N_good, 3, size, size)``
    images, each good cutout's apparent size
    (:func:`~deepscope.galaxy.apparent_size.bright_pixel_count`) and the
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


class CutoutDataset:
    """In-memory cutouts with labels, sample weights and random augmentation.

    A bar has no preferred orientation, so each training sample is rotated
    by a random angle and possibly mirrored; it is also zoomed by a random
    factor, so that apparent size (a confound of the bar sample, DATA.md)
    is a weaker cue than morphology, and so that a field cut wider or
    tighter than the training cutouts' does not change the decision
    (:func:`~deepscope.galaxy.zoom.transform_cutouts`: beyond the original
    field the light fades into the cutout's own sky). Targets are dicts
    with the class index (``label``) and a loss ``weight``.

    ``images`` are ``float32 (N, 3, S, S)``
    (:func:`~deepscope.galaxy.preprocess.to_model_input`), ``weights``
    per-sample loss weights (default 1); zoom factors are drawn
    log-uniformly in ``zoom_range`` (smallest, largest).

    Examples
    --------
    >>> data = CutoutDataset(np.zeros((2, 3, 8, 8), np.float32), np.array([0, 1]))
    >>> image, target = data[1]
    >>> len(data), tuple(image.shape), int(target["label"]), float(target["weight"])
    (2, (3, 8, 8), 1, 1.0)
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                 augment: bool = False, zoom_range: tuple[float, float] = DEFAULT_ZOOM_RANGE):
        import torch

        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels)
        self.weights = torch.ones(len(labels)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        self.augment = augment
        self.zoom_range = tuple(zoom_range)
        # measured once: each draw of a sample needs its sky, and measuring it costs more than the resampling
        self.sky = sky_level_and_noise(self.images) if augment and len(images) else None

    def __len__(self):
        return len(self.labels)

    def _transform(self, index):
        import math

        import torch

        angle = float(torch.rand(()) * 2 * math.pi)
        low, high = (math.log(z) for z in self.zoom_range)
        zoom = math.exp(low + float(torch.rand(())) * (high - low))
        mirror = bool(torch.rand(()) < 0.5)
        sky = tuple(part[index:index + 1] for part in self.sky)
        return transform_cutouts(self.images[index:index + 1], zoom, angle, mirror, sky=sky)[0]

    def __getitem__(self, index):
        image = self._transform(index) if self.augment else self.images[index]
        return image, {"label": self.labels[index], "weight": self.weights[index]}
