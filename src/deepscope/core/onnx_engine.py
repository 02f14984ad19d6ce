"""What runs a shipped network: torch, or ONNX Runtime on one of its exports.

A shipped ``.pt`` may have ONNX exports beside it in the package's
``weights/`` folder (``NAME.onnx`` in fp32, ``NAME.int8.onnx`` in int8), made
from it by ``scripts/export_onnx.py``, never at run time; its row of the
shipped table (:data:`deepscope.registry.SHIPPED`) lists them and names the
one the CPU runs by default. A predictor asks :func:`onnx_network` for its
network with the engine the user chose (``--engine``):

- ``auto``: on the CPU, a shipped model runs its row's ``cpu_engine`` (the
  int8 export falling back to the fp32 one, then to torch, when an export
  cannot be used; the reason is logged at debug level); CUDA, and any
  checkpoint that is not a shipped model's own file, run torch;
- ``torch``: always torch;
- ``onnx``: the fp32 export, torch's answers to about 1e-4 on any CPU;
- ``onnx-int8``: the int8 export, faster, with answers that move a little and
  that are reproducible only on the same kind of CPU (int8 kernels differ,
  AVX2 without VNNI can saturate).

An explicit ``onnx`` or ``onnx-int8`` runs that export or raises
:class:`~deepscope.errors.ModelError` saying why it cannot. Every export is
checked against its recorded SHA-256 and must record, inside the file, the
recorded SHA-256 of the ``.pt`` it was exported from.

A smaller network that a checkpoint carries in its metadata (the galaxy bar
model's bar-length network) may ship an fp32 export of its own, listed in the
row's ``part_exports``; :func:`part_network` gives it wherever the main network
runs ONNX Runtime, so that the two do not run on two thread pools.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from deepscope.errors import ModelError
from deepscope.registry import EXPORT_SUFFIXES

if TYPE_CHECKING:
    import numpy as np

    from deepscope.registry import ShippedWeights

log = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "onnx", "onnx-int8")
# The environment variable that gives --engine its default; deprecated in favour of --engine.
ENGINE_VARIABLE = "DEEPSCOPE_ENGINE"
# metadata_props of an exported .onnx: the .pt file it came from and that file's SHA-256.
SOURCE_KEY = "deepscope_source"
SOURCE_SHA256_KEY = "deepscope_source_sha256"


class OnnxNetwork:
    """An exported network run by ONNX Runtime on the CPU, called like a torch module.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file: one float32 input ``x``, one output.
    threads : int
        ONNX Runtime intra-op threads; 0 means all cores (ONNX Runtime's own
        default). Inter-op parallelism stays off: these graphs are chains,
        and a second pool would only compete with the first.

    Notes
    -----
    Pickling keeps the path only, so a predictor holding one can be
    scattered to Dask workers: the copy opens its own session at its first
    call, with the torch thread count of that moment (a worker sets it to
    its own thread count before each partition), so workers do not each
    take the client's threads.
    """

    def __init__(self, path: str | Path, threads: int = 0):
        self.path = Path(path)
        # What runs the network, as --engine names it: "onnx-int8" for an int8 export, else "onnx".
        self.engine = "onnx-int8" if self.path.name.endswith(EXPORT_SUFFIXES["onnx-int8"]) else "onnx"
        self.threads = int(threads)
        self._session = _open_session(self.path, self.threads)

    def __getstate__(self) -> dict:
        return {"path": self.path, "engine": self.engine}

    def __setstate__(self, state: dict) -> None:
        self.path, self.engine, self.threads, self._session = state["path"], state["engine"], None, None

    def _ready(self):
        if self._session is None:
            import torch

            self.threads = torch.get_num_threads()
            self._session = _open_session(self.path, self.threads)
        return self._session

    @property
    def metadata(self) -> dict[str, str]:
        """The file's ``metadata_props`` (where it came from)."""
        return dict(self._ready().get_modelmeta().custom_metadata_map)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The network's output for a float32 batch."""
        import numpy as np

        return self._ready().run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]

    def __call__(self, x):
        """Like ``module(x)``: a CPU torch tensor (or array) in, a CPU torch tensor out."""
        import torch

        array = x.numpy() if isinstance(x, torch.Tensor) else x
        return torch.from_numpy(self.run(array))


def _open_session(path: Path, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Idle intra-op threads sleep instead of spinning: on a few cores the spin takes CPU from the file readers.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # ONNX Runtime's warnings go to stderr past logging; errors still raise
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_engine(engine: str) -> str:
    """``engine`` if it is one of :data:`ENGINES`.

    Raises
    ------
    ModelError
        Naming the valid engines.

    Examples
    --------
    >>> check_engine("onnx")
    'onnx'
    >>> check_engine("tensorrt")
    Traceback (most recent call last):
    ...
    deepscope.errors.ModelError: --engine tensorrt: not an engine; choose from auto, torch, onnx, onnx-int8
    """
    if engine not in ENGINES:
        msg = f"--engine {engine}: not an engine; choose from {', '.join(ENGINES)}"
        raise ModelError(msg)
    return engine


def onnx_network(entry: ShippedWeights | None, device: str = "cpu", engine: str = "auto",
                 checkpoint: str | Path | None = None) -> OnnxNetwork | None:
    """The ONNX Runtime network that ``engine`` asks for, or None where torch runs it.

    Parameters
    ----------
    entry : ShippedWeights or None
        The shipped model's row (:func:`deepscope.registry.shipped_entry`);
        None for a checkpoint of one's own or a network built in memory.
    device : str
        The predictor's device; only ``cpu`` runs ONNX Runtime.
    engine : str
        One of :data:`ENGINES`; see the module docstring.
    checkpoint : str or Path, optional
        What the predictor loaded, to name in messages.

    Returns
    -------
    OnnxNetwork or None
        Its threads are torch's current intra-op thread count, which every
        command sets from ``--threads`` before it loads a model.

    Raises
    ------
    ModelError
        For an unknown engine, and where an explicit ``onnx`` or
        ``onnx-int8`` cannot run: not on the CPU, not a shipped model, no
        such export, or an export that is damaged or will not load.
    """
    check_engine(engine)
    if engine == "torch":
        return None
    if engine == "auto":
        if str(device) != "cpu" or entry is None or entry.cpu_engine == "torch":
            return None
        # The fp32 export is the fallback of the int8 one: torch's answers, still faster than torch.
        for choice in dict.fromkeys((entry.cpu_engine, "onnx")):
            try:
                return _load(entry, choice)
            except ModelError as exc:
                log.debug("not running %s: %s", choice, exc)
        return None
    if str(device) != "cpu":
        msg = f"--engine {engine}: ONNX Runtime runs on the CPU only, not --device {device}; use --engine auto or torch"
        raise ModelError(msg)
    if entry is None:
        msg = f"--engine {engine}: {checkpoint or 'this network'} is not a shipped model, and only those have " \
              "ONNX exports; use --engine auto or torch"
        raise ModelError(msg)
    return _load(entry, engine)


def _load(entry: ShippedWeights, engine: str) -> OnnxNetwork:
    """The entry's export for ``engine``, verified and opened; ModelError saying why not."""
    if engine not in entry.exports:
        msg = f"--engine {engine}: shipped model {entry.name} has no {engine} export " \
              f"(it ships {', '.join(entry.exports) or 'none'})"
        raise ModelError(msg)
    return _open_verified(entry, entry.export_path(engine))


def part_network(entry: ShippedWeights | None, part: str, main: OnnxNetwork | None) -> OnnxNetwork | None:
    """The fp32 export of the network a shipped checkpoint carries in ``meta[part]``, where its main network
    runs ONNX Runtime; None where torch runs it.

    A second small network run by torch beside ONNX Runtime costs more than
    its own arithmetic: each side's thread pool wakes against the other's
    (the galaxy bar measures took 61-64 us per cutout of ``galaxy predict``'s
    main process with the length network on torch, 33-37 us on its export;
    docs/galaxy.md, Speed).
    It follows the main network's engine: fp32 under both ``onnx`` and
    ``onnx-int8`` (the part is small; int8 would buy little and move its answers).

    Parameters
    ----------
    entry : ShippedWeights or None
        The shipped model's row; None for a checkpoint of one's own (torch).
    part : str
        The metadata key, e.g. ``bar_length``.
    main : OnnxNetwork or None
        What runs the main network (:func:`onnx_network`).

    Returns
    -------
    OnnxNetwork or None
        None also where the export cannot be used: torch then runs the part, and
        the reason is logged at debug level.
    """
    if main is None or entry is None or part not in entry.part_exports:
        return None
    try:
        return _open_verified(entry, entry.part_export_path(part))
    except ModelError as exc:
        log.debug("running %s's %s network on torch: %s", entry.name, part, exc)
        return None


def _open_verified(entry: ShippedWeights, path: Path) -> OnnxNetwork:
    """One of the entry's ONNX files, checked against its recorded SHA-256 and its source ``.pt``, opened."""
    import torch

    from deepscope.errors import first_line
    from deepscope.registry import verified_file

    export = verified_file(entry, path)
    try:
        import onnxruntime
    except ImportError as exc:
        msg = f"onnxruntime does not import ({exc}); pip install onnxruntime"
        raise ModelError(msg) from None
    try:
        network = OnnxNetwork(export, torch.get_num_threads())
    except Exception as exc:  # noqa: BLE001 - e.g. an onnxruntime too old for the file's opset: torch still can
        msg = f"{export}: onnxruntime {onnxruntime.__version__} cannot load it: {first_line(exc)}"
        raise ModelError(msg) from None
    if network.metadata.get(SOURCE_SHA256_KEY) != entry.sha256:
        msg = f"{export}: exported from other weights than {entry.file}; re-run scripts/export_onnx.py"
        raise ModelError(msg)
    return network
