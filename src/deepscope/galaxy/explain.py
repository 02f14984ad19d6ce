"""What the network looks at: feature maps of every convolution, occlusion maps, and their figure files.

``galaxy explain --layers`` writes :func:`write_layer_maps`, ``--occlusion``
:func:`write_occlusion_png` (with the measured bar drawn over a galaxy called
barred, :func:`draw_bar`); evaluation measures :func:`region_occlusion_drop`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepscope.core import plots
from deepscope.core.distributed import set_torch_threads
from deepscope.core.files import atomic_path, check_writable
from deepscope.core.report import Report
from deepscope.errors import ModelError
from deepscope.galaxy.io import read_galaxy_image
from deepscope.galaxy.predictor import GalaxyPredictor
from deepscope.galaxy.preprocess import to_model_input

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure


def conv_label(conv: torch.nn.Conv2d, number: int) -> str:
    """A name a person reads for the ``number``-th (from 1) convolution of a network.

    Examples
    --------
    >>> from torch import nn
    >>> conv_label(nn.Conv2d(3, 16, 3, stride=2), 1)
    'conv1 (3x3 stride 2, 16 ch)'
    >>> conv_label(nn.Conv2d(16, 32, 5), 2)
    'conv2 (5x5, 32 ch)'
    """
    height, width = conv.kernel_size
    stride = f" stride {conv.stride[0]}" if max(conv.stride) > 1 else ""
    return f"conv{number} ({height}x{width}{stride}, {conv.out_channels} ch)"


def conv_feature_maps(model: torch.nn.Module, batch: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """Outputs of every 2-D convolution of a model (on any device) for a ``float32 (1, 3, S, S)`` batch.

    Returns
    -------
    list of (str, str, numpy.ndarray)
        Module path (``1.0``), readable name (:func:`conv_label`) and the
        ``(channels, H, W)`` feature maps of each convolution, in forward order, on the CPU.

    Raises
    ------
    ModelError
        If the model has no convolutional layer.
    """
    import torch

    captured, hooks = [], []
    convs = [(name, module) for name, module in model.named_modules() if isinstance(module, torch.nn.Conv2d)]
    for number, (name, module) in enumerate(convs, start=1):
        label = conv_label(module, number)
        hooks.append(module.register_forward_hook(
            lambda mod, inp, out, name=name, label=label: captured.append((name, label, out[0].detach().cpu().numpy()))
        ))
    if not hooks:
        msg = "the model has no convolutional layer to visualise"
        raise ModelError(msg)
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model(torch.from_numpy(batch).to(device))
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def _occluder(images, blur_sigma):
    # A blurred copy keeps the light under the patch but removes structure
    # such as a bar; a black patch would instead paint a dark, bar-like
    # hole over the bright centre and tell us about that artefact.
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(images, sigma=(0,) * (images.ndim - 2) + (blur_sigma, blur_sigma))


def occlusion_map(probability_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, patch: int = 12,
                  stride: int = 4, blur_sigma: float = 4.0) -> tuple[np.ndarray, float]:
    """Positive-class probability as a square patch slides over the image.

    Parameters
    ----------
    probability_fn : callable
        ``probability_fn(batch (N, 3, S, S)) -> (N,)`` positive-class probabilities.
    image : numpy.ndarray
        ``float32`` ``(3, S, S)`` model input.
    patch, stride : int
        Side of the occluding square and step between its positions, pixels.
    blur_sigma : float
        The patch shows a Gaussian-blurred copy of the image (sigma in pixels): same light, no structure.

    Returns
    -------
    heat : numpy.ndarray
        ``(S, S)`` mean probability over the patches covering each pixel.
    base : float
        Probability of the unoccluded image.
    """
    size = image.shape[-1]
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    positions = [(r, c) for r in starts for c in starts]
    batch = np.repeat(image[None], len(positions), axis=0)
    blurred = _occluder(image[None], blur_sigma)[0]
    for k, (r, c) in enumerate(positions):
        batch[k, :, r:r + patch, c:c + patch] = blurred[:, r:r + patch, c:c + patch]
    probs = np.concatenate([probability_fn(batch[i:i + 256]) for i in range(0, len(batch), 256)])
    total = np.zeros((size, size))
    count = np.zeros((size, size))
    for p, (r, c) in zip(probs, positions):
        total[r:r + patch, c:c + patch] += p
        count[r:r + patch, c:c + patch] += 1
    base = float(probability_fn(image[None])[0])
    return total / np.maximum(count, 1), base


def region_occlusion_drop(probability_fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray, patch: int,
                          blur_sigma: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Drop of the positive probability when blurring the centre vs an outer region.

    The centre patch sits where a bar lies; the outer patches of the same
    size at the middle of each edge, on the galaxy's outskirts; each shows a
    blurred copy of the image (:func:`occlusion_map`, whose arguments these
    are, for ``(N, 3, S, S)`` images). Returns, per image, ``p(original) -
    p(occluded)`` for the centre and the mean over the four outer patches.
    """
    size = images.shape[-1]
    mid, far = (size - patch) // 2, size - patch
    base = probability_fn(images)
    blurred = _occluder(images, blur_sigma)

    def drop(r, c):
        occluded = images.copy()
        occluded[:, :, r:r + patch, c:c + patch] = blurred[:, :, r:r + patch, c:c + patch]
        return base - probability_fn(occluded)

    outer = [drop(r, c) for r, c in [(mid, 0), (mid, far), (0, mid), (far, mid)]]
    return drop(mid, mid), np.mean(outer, axis=0)


def _save(fig, path):
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_layer_maps(image_path: str | Path, out_dir: str | Path, model: str | Path | None = None,
                     max_channels: int = 32, device: str = "cpu", threads: int | None = None,
                     engine: str = "auto") -> list[Path]:
    """Write one PNG grid of feature maps per convolutional layer, and an index page.

    Parameters
    ----------
    image_path : str or Path
        Cutout to show.
    out_dir : str or Path
    model, device, engine
        See :meth:`GalaxyPredictor.from_checkpoint`; ``engine`` gives the probabilities shown, the
        feature maps are always torch's.
    max_channels : int
        Feature maps shown per layer.
    threads : int, optional
        torch CPU threads (0 or None: all cores).

    Returns
    -------
    list of Path
        The PNG files, input first (``NN_<module path>.png`` per convolution).
    """
    out_dir = check_writable(out_dir, is_dir=True)
    set_torch_threads(threads)
    predictor = GalaxyPredictor.from_checkpoint(model, device, engine)
    rgb = read_galaxy_image(image_path)
    batch = to_model_input(rgb, predictor.input_size)[None]
    probs = predictor.probabilities(batch)[0]
    report = Report(out_dir, f"feature maps of {Path(image_path).name}")
    report.text(", ".join(f"p({name}) = {p:.3f}" for name, p in zip(predictor.readable_names, probs)))
    paths = [out_dir / "input.png"]
    _save(plots.image_grid_figure([batch[0].transpose(1, 2, 0)], ["input"], ncols=1), paths[0])
    report.image(paths[0].name, "input")
    for number, (name, label, maps) in enumerate(conv_feature_maps(predictor.model, batch), start=1):
        shown = maps[:max_channels]
        size = f"{maps.shape[1]}x{maps.shape[2]}"
        fig = plots.image_grid_figure(list(shown), [f"ch {i}" for i in range(len(shown))], ncols=8,
                                      cmap="viridis", suptitle=f"{label}: {maps.shape[0]} maps of {size}")
        # File names keep the module path, as earlier versions wrote them.
        path = out_dir / f"{number:02d}_{name.replace('.', '_')}.png"
        _save(fig, path)
        report.image(path.name, f"{label}: {maps.shape[0]} maps of {size}")
        paths.append(path)
    report.write()
    return paths


def draw_bar(ax, length_px: float, angle_deg: float, size: int, colour: str = "cyan") -> None:
    """Draw a bar on an image of side ``size`` shown with ``imshow``: a line of ``length_px`` through
    the centre at ``angle_deg`` counter-clockwise from up
    (:func:`~deepscope.galaxy.bar_measure.bar_position_angles`)."""
    centre = (size - 1) / 2
    # Up on the image is towards row 0: the row offset has the opposite sign of the y offset.
    dx, dy = -np.sin(np.radians(angle_deg)) * length_px / 2, np.cos(np.radians(angle_deg)) * length_px / 2
    ax.plot([centre - dx, centre + dx], [centre + dy, centre - dy], color=colour, linewidth=2, alpha=0.8)


def occlusion_figure(rgb: np.ndarray, heat: np.ndarray, base: float, label: str,
                     bar: tuple[float, float, float] | None = None) -> Figure:
    """Cutout (``(S, S, 3)`` in [0, 1]), occlusion heat map (:func:`occlusion_map`'s ``heat``, ``base``)
    and overlay side by side; ``label`` names the probability (``p_bar``); ``bar`` (length in
    pixels, position angle in degrees, length in arcsec) is drawn over the cutout (:func:`draw_bar`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), dpi=100)
    axes[0].imshow(rgb)
    title = f"input, {label} = {base:.3f}"
    if bar is not None:
        draw_bar(axes[0], bar[0], bar[1], rgb.shape[0])
        title += f"\nbar {bar[2]:.1f}\" at {bar[1]:.0f} deg"
    axes[0].set_title(title, fontsize=9)
    # Scaled to the map's own range: near-certain galaxies move by little.
    shown = axes[1].imshow(heat, cmap="inferno")
    axes[1].set_title(f"{label} with patch here", fontsize=9)
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    axes[2].imshow(rgb)
    axes[2].imshow(np.clip(base - heat, 0, None), cmap="Reds", alpha=0.55,
                   extent=(-0.5, rgb.shape[1] - 0.5, rgb.shape[0] - 0.5, -0.5))
    axes[2].set_title("drop in probability (red)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def write_occlusion_png(image_path: str | Path, out_path: str | Path, model: str | Path | None = None,
                        patch: int = 12, stride: int = 4, device: str = "cpu", threads: int | None = None,
                        engine: str = "auto") -> float:
    """Write the occlusion figure of one cutout to the PNG ``out_path``; return its unoccluded probability.

    ``patch`` and ``stride`` are in model-input pixels (:func:`occlusion_map`);
    the other arguments are :func:`write_layer_maps`'.
    """
    check_writable(out_path)
    set_torch_threads(threads)
    predictor = GalaxyPredictor.from_checkpoint(model, device, engine)
    rgb = read_galaxy_image(image_path)
    image = to_model_input(rgb, predictor.input_size)
    covered = predictor.covered_probabilities(image[None])
    heat, base = occlusion_map(lambda b: covered(b)[:, -1], image, patch, stride)
    _save(occlusion_figure(image.transpose(1, 2, 0), heat, base, predictor.probability_column,
                           measured_bar(predictor, image)), out_path)
    return base


def measured_bar(predictor: GalaxyPredictor, image: np.ndarray) -> tuple[float, float, float] | None:
    """The bar a predictor measures in one model input ``(3, S, S)``, as :func:`occlusion_figure` draws it:
    (length in pixels, position angle in degrees, length in arcsec); None unless it carries a
    bar-length network and calls the galaxy barred."""
    if predictor.bar_length is None:
        return None
    batch = image[None]
    if predictor.decide(predictor.probabilities(batch))[0] != 1:
        return None
    bar = predictor.measure_bars(batch, np.array([True]))[0]
    length = bar["bar_length_arcsec"]
    return length / predictor.bar_length.arcsec_per_pixel, bar["bar_pa_deg"], length
