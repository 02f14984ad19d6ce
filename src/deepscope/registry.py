"""One registry of networks and of the weights that ship inside the package.

Networks register with ``@register_model`` and are built by name
(:func:`create_model`), so checkpoints store plain data (a name and keyword
arguments) instead of pickled code. Each network belongs to the domain whose
``models.py`` defines it; ``<domain> train --arch`` accepts that domain's
trainable networks only (:func:`check_arch`).

Shipped weights are entries of the same registry (:func:`register_weights`),
in the spirit of timm's pretrained configs: name -> network, weights file,
SHA-256, what it was trained on and its measured figure. That one table
feeds every ``--model NAME`` (:func:`resolve_model`), ``deepscope models``
and ``deepscope doctor``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepscope.errors import ModelError

DOMAINS = ("galaxy", "spectra", "cryoem")


@dataclass(frozen=True)
class Network:
    """A registered network builder."""

    name: str  # the builder's function name, stored in checkpoints
    domain: str  # galaxy, spectra or cryoem: the package that defines it
    builder: Callable  # keyword arguments only; returns a torch.nn.Module
    trainable: bool  # whether `<domain> train --arch` accepts it


@dataclass(frozen=True)
class ShippedWeights:
    """Pretrained weights that ship inside the package."""

    name: str  # what --model accepts, e.g. "galaxy_bars"
    domain: str  # the pipeline that uses it
    arch: str  # the registered network it instantiates
    file: str  # file name inside the package's weights/ folder
    trained_on: str  # data and split it was trained on
    figure: str  # its measured held-out figure, with the split
    default: bool = False  # the domain's model when --model is not given
    # The export DEEPSCOPE_ENGINE=auto runs on the CPU: "onnx" (fp32) or "onnx-int8" (deepscope.core.onnx_engine).
    cpu_engine: str = "onnx"

    @property
    def path(self) -> Path:
        """Where the file lies inside the installed package."""
        return weights_dir() / self.file

    @property
    def sha256(self) -> str | None:
        """The recorded SHA-256 of the file (``SHA256SUMS.json``), or None."""
        from deepscope.core.checkpoint import SUMS_NAME

        sums_path = weights_dir() / SUMS_NAME
        return json.loads(sums_path.read_text()).get(self.file) if sums_path.is_file() else None


_NETWORKS: dict[str, Network] = {}
_WEIGHTS: dict[str, ShippedWeights] = {}


def weights_dir() -> Path:
    """Folder of the pretrained weights that ship inside the package."""
    return Path(__file__).resolve().parent / "weights"


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


def register_weights(**fields) -> ShippedWeights:
    """Add a shipped-weights entry (the fields of :class:`ShippedWeights`)."""
    entry = ShippedWeights(**fields)
    if entry.name in _WEIGHTS:
        msg = f"shipped weights {entry.name!r} are registered twice"
        raise ModelError(msg)
    _WEIGHTS[entry.name] = entry
    return entry


def list_weights(domain: str | None = None) -> list[ShippedWeights]:
    """Every shipped-weights entry (of one domain), by name.

    Examples
    --------
    >>> [w.name for w in list_weights("galaxy")]
    ['galaxy_bars', 'galaxy_morphology']
    """
    _import_domain_models()
    return sorted((w for w in _WEIGHTS.values() if domain is None or w.domain == domain), key=lambda w: w.name)


def verified_weights_path(entry: ShippedWeights) -> Path:
    """The entry's file, checked against its recorded SHA-256.

    Raises
    ------
    ModelError
        If the file is missing or fails its check.
    """
    from deepscope.core.checkpoint import sha256

    path = entry.path
    if not path.is_file() or entry.sha256 is None:
        msg = f"{path}: shipped model {entry.name} is missing; reinstall deepscope or pass --model"
        raise ModelError(msg)
    if sha256(path) != entry.sha256:
        msg = f"{path}: shipped model {entry.name} fails its SHA-256 check; reinstall deepscope"
        raise ModelError(msg)
    return path


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
        existing path; the message lists the domain's shipped names.

    Examples
    --------
    >>> resolve_model("spectra_mk", "spectra").name
    'spectra_mk.pt'
    """
    shipped = {w.name: w for w in list_weights(domain)}
    if model is None:
        model = next(w.name for w in shipped.values() if w.default)
    if str(model) in shipped:
        return verified_weights_path(shipped[str(model)])
    path = Path(model)
    if not path.exists():
        msg = f"{model}: no such shipped model, run directory or checkpoint; shipped {domain} models: " \
              f"{', '.join(shipped)}"
        raise ModelError(msg)
    return path
