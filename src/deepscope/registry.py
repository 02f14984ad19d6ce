"""Networks by name, and the table of the trained weights that ship inside the package.

Networks register with ``@register_model`` and are built by name
(:func:`create_model`), so checkpoints store plain data (a name and keyword
arguments) instead of pickled code. Each network belongs to the domain whose
``models.py`` defines it; ``<domain> train --arch`` accepts that domain's
trainable networks only (:func:`check_arch`).

Shipped weights are the rows of :data:`SHIPPED`, plain data in the spirit of
timm's pretrained configs: name -> network, weights file, its ONNX exports
and the one the CPU runs by default, what it was trained on and its measured
figure; their SHA-256 sums are in ``weights/SHA256SUMS.json``. Reading the
table imports no torch. It feeds every ``--model NAME``
(:func:`resolve_model`), the engine a shipped model runs on
(:mod:`deepscope.core.onnx_engine`), ``deepscope models`` and ``deepscope doctor``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepscope.core.digest import sha256
from deepscope.errors import ModelError

DOMAINS = ("galaxy", "spectra", "cryoem")
# The weights folder's table of SHA-256 sums, file name -> hex digest.
SUMS_NAME = "SHA256SUMS.json"
# Where each ONNX export lies beside its .pt, by the --engine that runs it.
EXPORT_SUFFIXES = {"onnx": ".onnx", "onnx-int8": ".int8.onnx"}


@dataclass(frozen=True)
class Network:
    """A registered network builder."""

    name: str  # the builder's function name, stored in checkpoints
    domain: str  # galaxy, spectra or cryoem: the package that defines it
    builder: Callable  # keyword arguments only; returns a torch.nn.Module
    trainable: bool  # whether `<domain> train --arch` accepts it


@dataclass(frozen=True)
class ShippedWeights:
    """Trained weights that ship inside the package: one row of :data:`SHIPPED`."""

    name: str  # what --model accepts, e.g. "galaxy_bars"
    domain: str  # the pipeline that uses it
    arch: str  # the registered network its checkpoint builds
    file: str  # the .pt file inside the package's weights/ folder
    trained_on: str  # data and split it was trained on
    figure: str  # its measured held-out figure, with the split
    # Engines whose ONNX export ships beside the .pt (EXPORT_SUFFIXES): "onnx" (fp32), "onnx-int8".
    exports: tuple[str, ...] = ("onnx",)
    # What --engine auto runs on the CPU: one of exports, or "torch" (CUDA always runs torch).
    cpu_engine: str = "onnx"
    # Networks the checkpoint carries in its metadata (meta[PART]) with an fp32 ONNX export of their own,
    # NAME.PART.onnx, which runs wherever the main network runs ONNX Runtime (:meth:`part_export_path`).
    part_exports: tuple[str, ...] = ()
    default: bool = False  # the domain's model when --model is not given

    @property
    def path(self) -> Path:
        """Where the ``.pt`` file lies inside the installed package."""
        return weights_dir() / self.file

    @property
    def sha256(self) -> str | None:
        """The recorded SHA-256 of the ``.pt`` file, or None."""
        return recorded_sums().get(self.file)

    def export_path(self, engine: str) -> Path:
        """Where the export that ``engine`` (``onnx`` or ``onnx-int8``) runs lies, shipped or not."""
        return self.path.with_suffix(EXPORT_SUFFIXES[engine])

    def part_export_path(self, part: str) -> Path:
        """Where the fp32 export of the network in ``meta[part]`` lies, shipped or not (``NAME.PART.onnx``)."""
        return self.path.with_suffix(f".{part}{EXPORT_SUFFIXES['onnx']}")

    @property
    def export_paths(self) -> list[Path]:
        """Every ONNX file that ships with the entry: its exports, then its parts'."""
        return [self.export_path(engine) for engine in self.exports] + [self.part_export_path(part)
                                                                          for part in self.part_exports]


SHIPPED = (
    ShippedWeights(
        name="cryoem_empiar10017", domain="cryoem", arch="cryoem_unet_joint", file="cryoem_empiar10017.pt",
        trained_on="EMPIAR-10017, 10 micrographs (CryoPPP centres + CASSPER regions), validated on 17_02_43",
        figure="F1 0.887, centres 4.34 px on the held-out 14_33_35, 15_30_21, 16_44_07 (crYOLO 0.887, 7.21 px); "
               "int8 export 0.885, 4.31 px",
        exports=("onnx", "onnx-int8"), cpu_engine="onnx-int8",
    ),
    ShippedWeights(
        name="cryoem_general", domain="cryoem", arch="cryoem_unet_joint", file="cryoem_general.pt",
        trained_on="cryoem_empiar10017 fine-tuned on its 10 EMPIAR-10017 micrographs (binned 4x), simulated "
                   "micrographs of six synthetic shapes and 6 80S ribosome micrographs labelled by cryoem "
                   "selftrain's kept picks (no ribosome label read)",
        figure="80S ribosome recall 0.983 on 4 micrographs it never saw (cryoem_empiar10017: 0.669); "
               "held-out 10017 F1 0.876, centres 4.51 px; int8 export 0.875, 4.49 px, ribosome 0.983",
        exports=("onnx", "onnx-int8"), cpu_engine="onnx-int8", default=True,
    ),
    ShippedWeights(
        name="galaxy_bars", domain="galaxy", arch="barnet", file="galaxy_bars.pt",
        trained_on="sdss_gz2_bars train split (GZ2 bar fraction >= 0.8 vs 0)",
        figure="test split: ROC-AUC 0.903; size-matched accuracy 0.788; Hoyle-drawn bars found 0.955; "
               "the same decision for every rotation and mirror image; "
               "bar length median error 1.83\" (volunteers' spread 1.10\")",
        exports=("onnx", "onnx-int8"), cpu_engine="onnx-int8", part_exports=("bar_length",), default=True,
    ),
    ShippedWeights(
        name="galaxy_bars_rescaled", domain="galaxy", arch="barnet", file="galaxy_bars_rescaled.pt",
        trained_on="sdss_gz2_bars train split, every cutout zoomed to one apparent size (0.6-1.6x)",
        figure="test split: ROC-AUC 0.909; size-matched accuracy 0.797; Hoyle-drawn bars found 0.962; "
               "decisions changed by zooming 0.67x / 1.5x: 3.9% / 4.0% (galaxy_bars: 10.4% / 5.4%); "
               "16% slower than galaxy_bars",
        exports=("onnx", "onnx-int8"), cpu_engine="onnx-int8", part_exports=("bar_length",),
    ),
    ShippedWeights(
        name="galaxy_morphology", domain="galaxy", arch="barnet", file="galaxy_morphology.pt",
        trained_on="sdss_gz_ellip_spiral train split (elliptical vs spiral)",
        figure="test split: accuracy 0.944, ROC-AUC 0.991",
        exports=("onnx", "onnx-int8"), cpu_engine="onnx-int8",
    ),
    ShippedWeights(
        name="spectra_mk", domain="spectra", arch="spectra_ensemble", file="spectra_mk.pt",
        trained_on="3 spectra_cnn members, all five labelled libraries (MILES, MKCLASS, Pickles, Kesseli 2017, SDSS)",
        figure="recipe with MKCLASS held out: main class 0.923, subclass MAE 1.22, luminosity class 0.754",
        default=True,
    ),
    ShippedWeights(
        name="spectra_mk_fast", domain="spectra", arch="spectra_cnn_small", file="spectra_mk_fast.pt",
        trained_on="one spectra_cnn_small distilled from spectra_mk (--teacher, --mixup 0.5, 120 epochs), "
                   "all five labelled libraries",
        figure="recipe with MKCLASS held out: main class 0.912, subclass MAE 1.41, luminosity class 0.729 "
               "(its teacher 0.923 / 1.21 / 0.743); the network runs about 8x faster",
    ),
)


_NETWORKS: dict[str, Network] = {}


def weights_dir() -> Path:
    """Folder of the pretrained weights that ship inside the package."""
    return Path(__file__).resolve().parent / "weights"


def recorded_sums() -> dict[str, str]:
    """The weights folder's recorded SHA-256 sums, file name -> hex digest (empty if it has none)."""
    sums_path = weights_dir() / SUMS_NAME
    return json.loads(sums_path.read_text()) if sums_path.is_file() else {}


def register_model(fn: Callable | None = None, *, trainable: bool = True):
    """Register a network builder under its function name.

    Usable bare (``@register_model``) or with options
    (``@register_model(trainable=False)`` for networks that only exist as
    parts of others or are built by a dedicated command).

    Parameters
    ----------
    fn : callable, optional
        Builder returning a ``torch.nn.Module``; keyword arguments only.
    trainable : bool
        Whether ``<domain> train --arch`` accepts it.

    Returns
    -------
    callable
        ``fn`` itself (or a decorator, when called with options only).
    """

    def add(builder):
        name = builder.__name__
        if name in _NETWORKS:
            msg = f"model {name!r} is registered twice"
            raise ModelError(msg)
        _NETWORKS[name] = Network(name, _domain_of(builder.__module__), builder, trainable)
        return builder

    return add if fn is None else add(fn)


def _domain_of(module: str) -> str:
    # deepscope.galaxy.models -> galaxy; builders defined elsewhere (tests) are domain-free.
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "deepscope" and parts[1] in DOMAINS else ""


def _import_domain_models():
    # Domains register on import; importing them here keeps the registry
    # complete without the core importing a domain at module level.
    for domain in DOMAINS:
        importlib.import_module(f"deepscope.{domain}.models")


def list_models(domain: str | None = None, trainable: bool | None = None) -> list[str]:
    """Names of the registered networks, sorted.

    Parameters
    ----------
    domain : str, optional
        Only this domain's networks.
    trainable : bool, optional
        Only networks that ``train --arch`` accepts (True) or refuses (False).

    Returns
    -------
    list of str

    Examples
    --------
    >>> list_models("galaxy")
    ['abraham2018', 'barnet', 'barnet_fast']
    """
    _import_domain_models()
    return sorted(n.name for n in _NETWORKS.values()
                  if (domain is None or n.domain == domain) and (trainable is None or n.trainable == trainable))


def create_model(name: str, **kwargs):
    """Build a registered network.

    Parameters
    ----------
    name : str
        Registered network name.
    **kwargs
        Passed to the builder.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ModelError
        If ``name`` is not registered; the message lists the known networks.
    """
    _import_domain_models()
    if name not in _NETWORKS:
        msg = f"unknown model {name!r}; known models: {', '.join(sorted(_NETWORKS))}"
        raise ModelError(msg)
    return _NETWORKS[name].builder(**kwargs)


def check_arch(name: str | None, domain: str) -> None:
    """Refuse a ``--arch`` that the domain's ``train`` cannot train, before any data is read.

    Parameters
    ----------
    name : str or None
        The requested network; None (the domain's default) always passes.
    domain : str

    Raises
    ------
    ModelError
        Naming the valid networks.

    Examples
    --------
    >>> check_arch("spectra_cnn", "galaxy")
    Traceback (most recent call last):
    ...
    deepscope.errors.ModelError: --arch spectra_cnn is not a galaxy network; choose from: abraham2018, barnet, barnet_fast
    """
    valid = list_models(domain, trainable=True)
    if name is not None and name not in valid:
        msg = f"--arch {name} is not a {domain} network; choose from: {', '.join(valid)}"
        raise ModelError(msg)


def list_weights(domain: str | None = None) -> list[ShippedWeights]:
    """The shipped-weights rows (of one domain), by name; imports no torch.

    Examples
    --------
    >>> [w.name for w in list_weights("galaxy")]
    ['galaxy_bars', 'galaxy_bars_rescaled', 'galaxy_morphology']
    """
    return sorted((w for w in SHIPPED if domain is None or w.domain == domain), key=lambda w: w.name)


def verified_file(entry: ShippedWeights, path: Path) -> Path:
    """``path`` (the entry's ``.pt`` or one of its exports), checked against its recorded SHA-256.

    Raises
    ------
    ModelError
        If the file is absent, has no recorded sum, or fails its check.
    """
    expected = recorded_sums().get(path.name)
    if not path.is_file() or expected is None:
        msg = f"{path}: missing from the installed package (shipped model {entry.name}); reinstall deepscope"
        raise ModelError(msg)
    if sha256(path) != expected:
        msg = f"{path}: shipped model {entry.name} fails its SHA-256 check; reinstall deepscope"
        raise ModelError(msg)
    return path


def shipped_entry(model: str | Path | None, domain: str) -> ShippedWeights | None:
    """The row a ``--model`` value names, or None for a checkpoint of one's own.

    Parameters
    ----------
    model : str, Path or None
        A shipped name, None (the domain's default), or a path. A path names
        a row only when it is that row's own file in the package (what
        :func:`resolve_model` gives for the name); a copy elsewhere is a
        checkpoint like any other.
    domain : str

    Returns
    -------
    ShippedWeights or None

    Examples
    --------
    >>> shipped_entry(None, "spectra").name, shipped_entry("runs/mine", "spectra")
    ('spectra_mk', None)
    """
    rows = list_weights(domain)
    if model is None:
        return next(w for w in rows if w.default)
    by_name = next((w for w in rows if w.name == str(model)), None)
    if by_name is not None:
        return by_name
    path = Path(model).resolve()
    return next((w for w in rows if w.path.resolve() == path), None)


def resolve_model(model: str | Path | None, domain: str) -> Path:
    """The checkpoint that a ``--model`` value names.

    Parameters
    ----------
    model : str, Path or None
        A shipped name (:func:`list_weights`), a run directory or a ``.pt``
        file; None means the domain's default shipped model.
    domain : str

    Returns
    -------
    Path
        A shipped file (verified) or the path as given.

    Raises
    ------
    ModelError
        If ``model`` is neither a shipped name of this domain nor an
        existing path (the message lists the domain's shipped names, and
        says so when it names another domain's model), or a shipped file is
        missing or fails its SHA-256 check.

    Examples
    --------
    >>> resolve_model("spectra_mk", "spectra").name
    'spectra_mk.pt'
    """
    entry = shipped_entry(model, domain)
    if entry is not None:
        return verified_file(entry, entry.path)
    path = Path(model)
    if not path.exists():
        names = ", ".join(w.name for w in list_weights(domain))
        other = next((w for w in list_weights() if w.name == str(model)), None)
        if other is not None:
            msg = f"{model} is a shipped {other.domain} model, not a {domain} one; shipped {domain} models: {names}"
        else:
            msg = f"{model}: no such shipped model, run directory or checkpoint; shipped {domain} models: {names}"
        raise ModelError(msg)
    return path
