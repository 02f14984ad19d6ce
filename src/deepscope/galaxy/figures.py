"""Figure files for the explain commands: layer feature maps and occlusion maps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepscope.core import plots
from deepscope.core.distributed import set_torch_threads
from deepscope.core.files import atomic_path, check_writable
from deepscope.core.report import Report
from deepscope.galaxy.explain import conv_feature_maps, occlusion_map
from deepscope.galaxy.io import read_galaxy_image
from deepscope.galaxy.predictor import GalaxyPredictor
from deepscope.galaxy.preprocess import to_model_input

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _save(fig, path):
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_layer_maps(image_path: str | Path, out_dir: str | Path, model: str | Path | None = None,
                     max_channels: int = 32, device: str = "cpu", threads: int | None = None) -> list[Path]:
    """Write one PNG grid of feature maps per convolutional layer, and an index page.

    Parameters
    ----------
    image_path : str or Path
        Cutout to show.
    out_dir : str or Path
        Output directory.
    model : str, optional
        Shipped model name, run directory or checkpoint.
    max_channels : int
        Feature maps shown per layer.
    device : str
        ``cpu``, ``cuda`` or ``cuda:N``.
    threads : int, optional
        torch CPU threads (0 or None: all cores).

    Returns
    -------
    list of Path
        The PNG files, input first (``NN_<module path>.png`` per convolution).
    """
    out_dir = check_writable(out_dir, is_dir=True)
    set_torch_threads(threads)
    predictor = GalaxyPredictor.from_checkpoint(model, device)
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


def occlusion_figure(rgb: np.ndarray, heat: np.ndarray, base: float, label: str) -> Figure:
    """Cutout, occlusion heat map and overlay side by side.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(S, S, 3)`` image in [0, 1].
    heat : numpy.ndarray
        ``(S, S)`` probability with the patch over each pixel.
    base : float
        Probability of the unoccluded image.
    label : str
        Name of the probability, e.g. ``p_bar``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), dpi=100)
    axes[0].imshow(rgb)
    axes[0].set_title(f"input, {label} = {base:.3f}", fontsize=9)
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
                        patch: int = 12, stride: int = 4, device: str = "cpu", threads: int | None = None) -> float:
    """Write the occlusion figure of one cutout.

    Parameters
    ----------
    image_path, model, device, threads
        As in :func:`write_layer_maps`.
    out_path : str or Path
        Output PNG.
    patch, stride : int
        Occluding square side and step, in model-input pixels.

    Returns
    -------
    float
        Positive-class probability of the unoccluded cutout.
    """
    check_writable(out_path)
    set_torch_threads(threads)
    predictor = GalaxyPredictor.from_checkpoint(model, device)
    rgb = read_galaxy_image(image_path)
    image = to_model_input(rgb, predictor.input_size)
    heat, base = occlusion_map(lambda b: predictor.probabilities(b)[:, -1], image, patch, stride)
    _save(occlusion_figure(image.transpose(1, 2, 0), heat, base, predictor.probability_column), out_path)
    return base
