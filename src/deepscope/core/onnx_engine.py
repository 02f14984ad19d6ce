"""ONNX Runtime on the CPU for the shipped networks (issues 14 and 15: throughput).

Each shipped ``.pt`` may have an ``.onnx`` sibling in the package's
``weights/`` folder, exported from it by ``scripts/export_onnx.py`` (never at
run time). ONNX Runtime runs those networks 1.3-2.4x faster than torch on the
CPU with the same answers (within 1e-4; see the tests). A predictor asks
:func:`onnx_network` for its network: it gets an :class:`OnnxNetwork` only when

- the device is ``cpu`` (CUDA keeps torch),
- the checkpoint file is byte-identical to a shipped ``.pt`` (same SHA-256),
  so user-trained checkpoints and run directories always stay on torch,
- that ``.pt`` has an ``.onnx`` sibling that passes its own SHA-256 check and
  records, inside the file, that it was exported from exactly that ``.pt``,
- and ``onnxruntime`` imports.

Otherwise the predictor runs torch, silently (the reason is logged at debug
level). The environment variable ``DEEPSCOPE_ENGINE`` overrides the choice:

- unset or ``auto``: the rule above;
- ``torch``: always torch (to compare, or to rule the engine out);
- ``onnx``: insists on the fp32 export and raises
  :class:`~deepscope.errors.ModelError` saying why it cannot: the answers
  of the ``.pt`` to 1e-4, on any CPU;
- ``onnx-int8``: the int8 export (``NAME.int8.onnx``) where one ships,
  else as ``auto``.

Under ``auto`` a shipped model runs the export its registry entry names
(:attr:`~deepscope.registry.ShippedWeights.cpu_engine`). The galaxy models
name their int8 export (static QDQ, per-channel, calibrated on 512 training
cutouts): the network runs about 2.8x faster than the fp32 export, which
galaxy predict needs for 2,500 galaxies/s on 2 cores, with answers that move
a little: on the 818 test galaxies of ``galaxy_bars`` p_bar moves by up to
0.067 and 4 decisions change (ROC-AUC 0.9030 against 0.9034; the issue's
bound is 0.005). Int8 kernels also differ between CPUs (AVX2 without VNNI
can saturate), so int8 results are only reproducible on the same kind of
CPU; ``DEEPSCOPE_ENGINE=onnx`` gives the fp32 answers everywhere.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from deepscope.errors import ModelError

log = logging.getLogger(__name__)

ENGINE_VARIABLE = "DEEPSCOPE_ENGINE"
ENGINES = ("auto", "torch", "onnx", "onnx-int8")
EXPORT_SUFFIX, INT8_SUFFIX = ".onnx", ".int8.onnx"
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
        self.engine = "onnx-int8" if self.path.name.endswith(INT8_SUFFIX) else "onnx"
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
    # Idle intra-op threads sleep instead of spinning: on a few cores the spin takes CPU from the
    # file readers (per-file spectra 697 -> 870/s, galaxies 1,300 -> 1,338/s, picking unchanged).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # ONNX Runtime's warnings go to stderr past logging; errors still raise
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def engine_choice() -> str:
    """The engine that ``DEEPSCOPE_ENGINE`` asks for: ``auto`` (unset), ``torch``, ``onnx`` or ``onnx-int8``.

    Raises
    ------
    ModelError
        If the variable holds anything else.

    Examples
    --------
    >>> os.environ.pop(ENGINE_VARIABLE, None) and None
    >>> engine_choice()
    'auto'
    """
    choice = os.environ.get(ENGINE_VARIABLE, "auto").strip().lower() or "auto"
    if choice not in ENGINES:
        msg = f"{ENGINE_VARIABLE}={choice}: not an engine; choose from {', '.join(ENGINES)}"
        raise ModelError(msg)
    return choice


def shipped_export(checkpoint: str | Path, suffix: str = EXPORT_SUFFIX) -> Path:
    """The verified ``.onnx`` exported from a checkpoint file, if it is a shipped one.

    Parameters
    ----------
    checkpoint : str or Path
        The ``.pt`` file a predictor loaded (a run directory never matches).
    suffix : str
        :data:`EXPORT_SUFFIX`, or :data:`INT8_SUFFIX` for the int8 export.

    Returns
    -------
    Path

    Raises
    ------
    ModelError
        Saying why there is none: not a shipped ``.pt``, no ``.onnx`` beside
        it, or an ``.onnx`` that fails its SHA-256 check.
    """
    return _verified_export(_shipped_entry(checkpoint), suffix)


def _shipped_entry(checkpoint):
    """The registry entry whose recorded SHA-256 is the checkpoint file's; ModelError if none."""
    from deepscope.core.checkpoint import sha256
    from deepscope.registry import list_weights

    path = Path(checkpoint)
    if not path.is_file():
        msg = f"{path}: not a shipped checkpoint file (user-trained checkpoints run on torch)"
        raise ModelError(msg)
    digest = sha256(path)
    entry = next((w for w in list_weights() if w.sha256 == digest), None)
    if entry is None:
        msg = f"{path}: not a shipped checkpoint (user-trained checkpoints run on torch)"
        raise ModelError(msg)
    return entry


def _verified_export(entry, suffix):
    """The entry's export with ``suffix``, checked against its recorded SHA-256; ModelError if absent or altered."""
    from deepscope.core.checkpoint import SUMS_NAME, sha256
    from deepscope.registry import weights_dir

    export = entry.path.with_suffix(suffix)
    sums = json.loads((weights_dir() / SUMS_NAME).read_text())
    if not export.is_file() or export.name not in sums:
        msg = f"{export}: shipped model {entry.name} has no {'int8 ' if suffix == INT8_SUFFIX else ''}ONNX export"
        raise ModelError(msg)
    if sha256(export) != sums[export.name]:
        msg = f"{export}: fails its SHA-256 check; reinstall deepscope"
        raise ModelError(msg)
    return export


def onnx_network(checkpoint: str | Path | None, device: str = "cpu") -> OnnxNetwork | None:
    """The ONNX Runtime network for a checkpoint, or None where torch must run it.

    Parameters
    ----------
    checkpoint : str, Path or None
        The checkpoint file a predictor loaded; None (a network built in
        memory) always runs on torch.
    device : str
        The predictor's device; only ``cpu`` runs ONNX Runtime.

    Returns
    -------
    OnnxNetwork or None
        None when the rules of this module's docstring send it to torch (or
        ``DEEPSCOPE_ENGINE=torch``). Its threads are torch's current intra-op
        thread count, which every command sets from ``--threads`` before it
        loads a model (0 = all cores).

    Raises
    ------
    ModelError
        Only with ``DEEPSCOPE_ENGINE=onnx`` when ONNX Runtime cannot run it,
        saying why (and for an invalid ``DEEPSCOPE_ENGINE``).
    """
    choice = engine_choice()
    if choice == "torch":
        return None
    network = None
    try:
        entry = _runnable_entry(checkpoint, device)
        if choice == "onnx-int8" or (choice == "auto" and entry.cpu_engine == "onnx-int8"):
            try:
                network = _load(entry, checkpoint, INT8_SUFFIX)
            except ModelError as exc:
                log.debug("no int8 export: %s", exc)
        network = network or _load(entry, checkpoint)
    except ModelError as exc:
        if choice == "onnx":
            msg = f"{ENGINE_VARIABLE}=onnx: {exc}"
            raise ModelError(msg) from None
        log.debug("running torch: %s", exc)
        return None
    log.debug("running ONNX Runtime: %s", network.path)
    return network


def _runnable_entry(checkpoint, device):
    """The shipped entry of a checkpoint that ONNX Runtime may run; ModelError saying why not."""
    if str(device) != "cpu":
        msg = f"--device {device}: ONNX Runtime runs the CPU only"
        raise ModelError(msg)
    if checkpoint is None:
        msg = "a network without a checkpoint file runs on torch"
        raise ModelError(msg)
    # The checkpoint is hashed once: its entry's recorded SHA-256 is the file's from here on.
    return _shipped_entry(checkpoint)


def _load(entry, checkpoint, suffix=EXPORT_SUFFIX) -> OnnxNetwork:
    import torch

    from deepscope.errors import first_line

    export = _verified_export(entry, suffix)
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
        msg = f"{export}: exported from other weights than {Path(checkpoint).name}; re-run scripts/export_onnx.py"
        raise ModelError(msg)
    return network
