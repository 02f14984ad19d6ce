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
        ``output_scale`` (arcsec per output unit), ``views`` (how many of
        the eight views of the canonical view are averaged: 1, 2, 4 or 8)
        and optionally ``input_size`` (the side it reads, :func:`binned`).
    device : str
    network : callable, optional
        What runs ``model`` instead of torch: its ONNX export
        (:func:`~deepscope.core.onnx_engine.part_network`), called like a module.
    """

    def __init__(self, model, meta: dict, device: str = "cpu", network=None):
        from deepscope.core.distributed import select_device
        from deepscope.core.speed import prepare_for_inference

        self.device = select_device(device)
        self.network = network or prepare_for_inference(model.eval()).to(self.device)
        self.field = meta["field"]
        self.output_scale = float(meta["output_scale"])
        self.views = int(meta["views"])
        self.input_size = meta.get("input_size")

    @classmethod
    def from_record(cls, record: dict, device: str = "cpu", network=None) -> BarLengthModel:
        """The network a classifier's ``meta["bar_length"]`` holds (its ``model``, ``model_kwargs``,
        ``state_dict`` and ``meta``); ``network`` as in the class."""
        from deepscope.core.checkpoint import model_from_checkpoint

        return cls(model_from_checkpoint(record), record["meta"], device, network)

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
                x = torch.from_numpy(binned(dihedral_view(canonical, view), self.input_size)).to(self.device)
                if isinstance(self.network, torch.nn.Module):  # ONNX Runtime wants the array as it is
                    x = x.contiguous(memory_format=torch.channels_last)
                outputs.append(self.network(x)[:, 0].cpu().numpy())
        return np.mean(outputs, axis=0).astype(np.float64) * self.output_scale


def binned(batch: np.ndarray, size: int | None = None) -> np.ndarray:
    """A batch ``(N, C, S, S)`` as the length network reads it: float32 in [0, 1], averaged in square
    bins down to side ``size`` (which must divide ``S``; None keeps ``S``).

    Examples
    --------
    >>> binned(np.full((1, 3, 4, 4), 255, np.uint8), 2).shape
    (1, 3, 2, 2)
    """
    factor = batch.shape[-1] // size if size else 1
    scale = np.float32(1 / (factor * factor * (255 if batch.dtype == np.uint8 else 1)))
    # Strided slices summed (in uint16 for pixels): several times faster than a reshape and a mean.
    kind = np.uint16 if batch.dtype == np.uint8 else np.float32
    total = sum(batch[..., i::factor, j::factor].astype(kind) for i in range(factor) for j in range(factor))
    return np.ascontiguousarray(np.multiply(total, scale, dtype=np.float32))


def _normalised(sums):
    """``x**2``, ``y**2`` and ``xy`` moments from the sums of 1, x**2, y**2 and xy (``(N, 4)``)."""
    sums = sums.astype(np.float64)  # the per-galaxy arithmetic after the float32 pixel sums
    return sums[:, 1:].T / (sums[:, 0] + 1e-12)


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
    n, size = len(batch), batch.shape[-1]
    # float32 for the per-pixel work (half the memory traffic of float64; angles agree to about 0.001 degrees)
    light = np.asarray(batch).sum(axis=1, dtype=np.float32).reshape(n, size * size)
    u = np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2)
    x, y = (c.ravel() for c in np.meshgrid(u, -u))  # x right, y up
    r = np.hypot(x, y)
    # The sky: the median of a ring at the field's edge, which every turn of the cutout keeps (its corners it does not).
    sky = np.median(light[:, (r >= size / 2 - 2) & (r <= size / 2)], axis=1)
    light = np.maximum(light - sky[:, None], 0)
    radius = np.asarray(length_px, np.float32)[:, None] / 2
    # Second moments as one matrix product: the light's sums of 1, x**2, y**2 and xy.
    basis = np.stack([np.ones_like(x), x * x, y * y, x * y], axis=1)
    xx, yy, xy = _normalised(((light * ((r >= radius) & (r <= size / 2))) @ basis))
    disc_angle = 0.5 * np.arctan2(2 * xy, xx - yy)
    ellipticity = np.hypot(xx - yy, 2 * xy) / (xx + yy + 1e-12)
    q = np.where(xx + yy > 0, np.clip(np.sqrt((1 - ellipticity) / (1 + ellipticity)), _MIN_AXIS_RATIO, 1), 1.0)
    cos, sin = np.cos(disc_angle), np.sin(disc_angle)
    # Along the disc's major axis and its minor axis stretched by 1/q, the disc is round: there the
    # squared radius is a quadratic form in x and y, and the bar lies between two of its levels.
    a, b, c = (v.astype(np.float32)[:, None] for v in (cos**2 + (sin / q) ** 2, sin**2 + (cos / q) ** 2,
                                                        2 * sin * cos * (1 - 1 / q**2)))
    rr2 = a * basis[:, 1] + b * basis[:, 2] + c * basis[:, 3]
    inside = (rr2 >= (_INNER_SHARE * radius) ** 2) & (rr2 <= radius**2)
    xx, yy, xy = _normalised((light * inside) @ basis)
    # The same moments in the stretched frame.
    mm = cos**2 * xx + 2 * cos * sin * xy + sin**2 * yy
    nn = (sin**2 * xx - 2 * cos * sin * xy + cos**2 * yy) / q**2
    mn = (-cos * sin * xx + (cos**2 - sin**2) * xy + cos * sin * yy) / q
    bar = 0.5 * np.arctan2(2 * mn, mm - nn)
    # Back into the cutout: the minor-axis component shrinks again, then the disc's angle is added.
    angle = np.arctan2(np.sin(bar) * q, np.cos(bar)) + disc_angle
    return (np.degrees(angle) - 90) % 180


def measure_bars(model: BarLengthModel, batch: np.ndarray, views: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Bar length (arcsec) and position angle (degrees, :func:`bar_position_angles`) of each cutout of a batch.

    ``batch`` is at the model's input size, in its field; ``views`` as in :meth:`BarLengthModel.lengths`.
    """
    lengths = model.lengths(batch, views)
    return lengths, bar_position_angles(batch, lengths / model.arcsec_per_pixel)

