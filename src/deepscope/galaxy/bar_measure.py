"""How long a galaxy's bar is, and which way it points.

Length: a small regression network trained on the bars that Galaxy Zoo
volunteers drew (Hoyle et al. 2011, MNRAS 417, 2601). It travels inside
the bar classifier's checkpoint (``meta["bar_length"]``: network name,
arguments, weights and its own metadata), so a classifier that carries one
measures the galaxies it calls barred. It sees each cutout in its canonical
view (:mod:`deepscope.galaxy.orientation`; its ``meta["views"]`` may add
more views of that view, averaged), so turning or mirroring a cutout cannot
change its length.

Position angle: measured from the pixels, not learnt (the drawn bars come
without one): the second moments of the light within the bar's radius,
after the disc around it is made round (its inclination stretches
everything along its major axis, bar included). Degrees counter-clockwise
from the cutout's +y axis (up), in [0, 180): east of north for SDSS
cutouts, which have north up and east left.
"""

from __future__ import annotations

import numpy as np

from deepscope.galaxy.orientation import apply_views, canonical_view_index, dihedral_view

# The columns ``galaxy predict`` adds for a classifier that carries a length model (empty where not called barred).
BAR_COLUMNS = ("bar_length_arcsec", "bar_pa_deg")
# Inside this share of the bar's radius the bulge, round and bright, would outweigh the bar.
_INNER_SHARE = 0.25
# Discs are not deprojected beyond this axis ratio: flatter ones are nearly edge-on, where no bar is measurable.
_MIN_AXIS_RATIO = 0.3


class BarLengthModel:
    """A bar-length network with what it needs to answer in arcsec.

    Parameters
    ----------
    model : torch.nn.Module
        One output: the full bar length in units of ``meta["output_scale"]`` arcsec.
    meta : dict
        ``field`` (the cutouts' field, :mod:`deepscope.galaxy.field`),
        ``output_scale`` (arcsec per output unit) and ``views`` (how many of
        the eight views of the canonical view are averaged: 1, 2, 4 or 8).
    device : str
    """

    def __init__(self, model, meta: dict, device: str = "cpu"):
        from deepscope.core.distributed import select_device
        from deepscope.core.speed import prepare_for_inference

        self.device = select_device(device)
        self.network = prepare_for_inference(model.eval()).to(self.device)
        self.field = meta["field"]
        self.output_scale = float(meta["output_scale"])
        self.views = int(meta["views"])

    @classmethod
    def from_record(cls, record: dict, device: str = "cpu") -> BarLengthModel:
        """The network a classifier's ``meta["bar_length"]`` holds (its ``model``, ``model_kwargs``,
        ``state_dict`` and ``meta``)."""
        from deepscope.core.checkpoint import model_from_checkpoint

        return cls(model_from_checkpoint(record), record["meta"], device)

    @property
    def arcsec_per_pixel(self) -> float:
        """Pixel scale of the network's input, from its field."""
        return float(self.field["arcsec"]) / float(self.field["pixels"])

    def lengths(self, batch: np.ndarray, views: np.ndarray | None = None) -> np.ndarray:
        """Full bar length in arcsec of each cutout of a batch ``(N, 3, S, S)`` (uint8 pixels or floats in [0, 1]).

        Parameters
        ----------
        batch : numpy.ndarray
        views : numpy.ndarray of int, optional
            The cutouts' canonical views (:func:`~deepscope.galaxy.orientation.canonical_view_index`),
            when the caller has them already.

        Returns
        -------
        numpy.ndarray of float, shape (N,)
        """
        import torch

        if not len(batch):
            return np.zeros(0)
        canonical = apply_views(batch, canonical_view_index(batch) if views is None else np.asarray(views))
        outputs = []
        with torch.inference_mode():
            for view in range(self.views):
                x = torch.from_numpy(np.ascontiguousarray(dihedral_view(canonical, view))).to(self.device)
                x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
                outputs.append(self.network(x.contiguous(memory_format=torch.channels_last))[:, 0].cpu().numpy())
        return np.mean(outputs, axis=0).astype(np.float64) * self.output_scale


def _second_moments(weights, x, y):
    total = weights.sum(axis=(1, 2)) + 1e-12
    return [(weights * a * b).sum(axis=(1, 2)) / total for a, b in ((x, x), (y, y), (x, y))]


def bar_position_angles(batch: np.ndarray, length_px: np.ndarray) -> np.ndarray:
    """Position angle of each cutout's bar, degrees counter-clockwise from +y (up), in [0, 180).

    The light (the bands summed, less the median of a 2-pixel ring at the field's edge) outside
    the bar's radius and inside the field's circle gives the disc's axis
    ratio and major axis (second moments); the cutout is stretched along
    the disc's minor axis until the disc is round, the bar's axis is the
    major axis of the light between a quarter of its radius and its radius
    there, and it is turned back into the cutout. A bar as long as the
    field leaves no disc to measure: its angle is read without deprojecting.

    Parameters
    ----------
    batch : numpy.ndarray
        ``(N, 3, S, S)`` cutouts as given (uint8 pixels or floats).
    length_px : numpy.ndarray
        Full bar length of each, in the cutout's pixels.

    Returns
    -------
    numpy.ndarray of float, shape (N,)

    Examples
    --------
    A bar along the rows (east-west on an SDSS cutout) has position angle 90:

    >>> x = np.zeros((1, 3, 33, 33), np.uint8)
    >>> x[0, :, 15:18, 6:27] = 200
    >>> bar_position_angles(x, np.array([24.0])).round(1).tolist()
    [90.0]
    """
    light = np.asarray(batch, np.float64).sum(axis=1)
    size = light.shape[-1]
    u = np.arange(size) - (size - 1) / 2
    x, y = np.meshgrid(u, -u)  # x right, y up
    x, y = x[None], y[None]
    r = np.hypot(x, y)
    # The sky: the median of a ring at the field's edge, which every turn of the cutout keeps (its corners it does not).
    sky = np.median(light[:, (r[0] >= size / 2 - 2) & (r[0] <= size / 2)], axis=1)
    light = np.clip(light - sky[:, None, None], 0, None)
    radius = (np.asarray(length_px, np.float64) / 2)[:, None, None]
    xx, yy, xy = _second_moments(light * ((r >= radius) & (r <= size / 2)), x, y)
    disc_angle = 0.5 * np.arctan2(2 * xy, xx - yy)
    ellipticity = np.hypot(xx - yy, 2 * xy) / (xx + yy + 1e-12)
    axis_ratio = np.clip(np.sqrt((1 - ellipticity) / (1 + ellipticity)), _MIN_AXIS_RATIO, 1)
    axis_ratio = np.where((xx + yy) > 0, axis_ratio, 1.0)
    cos, sin, q = (np.cos(disc_angle)[:, None, None], np.sin(disc_angle)[:, None, None], axis_ratio[:, None, None])
    # Coordinates along the disc's major and (stretched) minor axis: the disc becomes round.
    major, minor = x * cos + y * sin, (-x * sin + y * cos) / q
    rr = np.hypot(major, minor)
    mm, nn, mn = _second_moments(light * ((rr >= _INNER_SHARE * radius) & (rr <= radius)), major, minor)
    bar = 0.5 * np.arctan2(2 * mn, mm - nn)
    # Back into the cutout: the minor-axis component shrinks again, then the disc's angle is added.
    angle = np.arctan2(np.sin(bar) * axis_ratio, np.cos(bar)) + disc_angle
    return (np.degrees(angle) - 90) % 180


def measure_bars(model: BarLengthModel, batch: np.ndarray, views: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Bar length (arcsec) and position angle (degrees, :func:`bar_position_angles`) of each cutout of a batch.

    ``batch`` is at the model's input size, in its field; ``views`` as in :meth:`BarLengthModel.lengths`.
    """
    lengths = model.lengths(batch, views)
    return lengths, bar_position_angles(batch, lengths / model.arcsec_per_pixel)

