"""Export the shipped networks to ONNX, next to their ``.pt`` files, for the CPU engine.

Each ``src/deepscope/weights/NAME.pt`` with a spec below becomes
``NAME.onnx``: the network exactly as its predictor runs it on torch (BatchNorm
folded, eval mode), through ``torch.onnx.export(..., dynamo=True)`` (the legacy
exporter fails on the spectra CNN's ``AdaptiveAvgPool1d``), with the batch
dimension dynamic (and the image size, for the cryo-EM U-Net). The ``.onnx``
records the ``.pt`` it came from (file name and SHA-256, in its
``metadata_props``), so :mod:`deepscope.core.onnx_engine` never pairs it with
other weights; its own SHA-256 goes into ``SHA256SUMS.json``. Running it twice
writes the same bytes (checked with ``--check``).

The galaxy models and the pickers also get ``NAME.int8.onnx``:
the fp32 export quantised by ONNX Runtime (static QDQ, per-channel int8
weights, uint8 activations), calibrated on their training data read from
../shared/data (so that must be present): 512 cutouts of the training split,
at the model's canonical scale when it has one; the picker's own real training
micrographs (EMPIAR-10017, and the ribosome set's for ``cryoem_general``) at
its working scale. The CPU runs it by default (the shipped row's
``cpu_engine`` in :data:`deepscope.registry.SHIPPED`); its answers differ a
little from the fp32 export's, which ``--engine onnx`` runs. A model's
exports are listed in its row (``exports``); add the engine there when a
new one ships. The tracing and the int8 recipe are in ``scripts/onnx_tools.py``.

A network that a checkpoint carries in its metadata and that its row lists in
``part_exports`` (the bar models' ``bar_length``) becomes ``NAME.PART.onnx``,
fp32 only, exported the same way from the same ``.pt``.

Needs the ``export`` extra (``pip install -e .[export]``: onnx, onnxscript);
the package itself only needs onnxruntime to run the result.

usage:
  python scripts/export_onnx.py                # all shipped networks with a spec
  python scripts/export_onnx.py galaxy_bars    # one
  python scripts/export_onnx.py --check        # export to a temporary folder, compare with the shipped files
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

from onnx_tools import quantise_int8, trace_to_onnx

# Shipped name -> (domain, example input shape, names of its dynamic dimensions: batch, then rows and columns).
# The example's batch of 2 keeps torch.export from specialising the batch dimension to 1; the U-Net's
# rows and columns are multiples of 8 (its three poolings; predict_maps pads to them).
SPECS = {
    "galaxy_bars": ("galaxy", (2, 3, 64, 64), ("n",)),
    "galaxy_morphology": ("galaxy", (2, 3, 64, 64), ("n",)),
    "galaxy_bars_rescaled": ("galaxy", (2, 3, 64, 64), ("n",)),
    "spectra_mk": ("spectra", None, ("n",)),
    "spectra_mk_fast": ("spectra", None, ("n",)),
    "cryoem_empiar10017": ("cryoem", (1, 1, 256, 256), ("n", "h", "w")),
    "cryoem_general": ("cryoem", (1, 1, 256, 256), ("n", "h", "w")),
}
# Shipped name -> its training data under ../shared/data, whose training split calibrates the int8 export.
INT8_CALIBRATION = {"galaxy_bars": "galaxy/sdss_gz2_bars", "galaxy_morphology": "galaxy/sdss_gz_ellip_spiral",
                    "galaxy_bars_rescaled": "galaxy/sdss_gz2_bars", "cryoem_empiar10017": "cryoem",
                    "cryoem_general": "cryoem"}
# The real micrograph folders a picker may have trained on, under the pickers' INT8_CALIBRATION folder,
# with their particle diameter in pixels of the files (../shared/data/DATA.md).
CRYOEM_MICROGRAPHS = {"empiar10017/micrographs": 108.0, "ribosome80s_empiar10028/micrographs": 56.0}
CALIBRATION_CUTOUTS = 512
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _entry(name: str):
    """The shipped table's row of ``name``."""
    from deepscope.registry import list_weights

    return next(w for w in list_weights() if w.name == name)


def torch_network(name: str):
    """The torch network that the shipped model's predictor runs, and an example input.

    Loaded with ``engine="torch"``: the torch network is the source, so the exports being replaced are never opened.
    """
    import torch

    domain, shape, _ = SPECS[name]
    if domain == "galaxy":
        from deepscope.core.speed import fold_batchnorm
        from deepscope.galaxy.predictor import GalaxyPredictor

        predictor = GalaxyPredictor.from_checkpoint(name, engine="torch")
        network = fold_batchnorm(predictor.model.eval())
    elif domain == "spectra":
        from deepscope.spectra.predictor import SpectraPredictor

        predictor = SpectraPredictor.from_checkpoint(name, engine="torch")
        network = predictor.model
        shape = (2, 2, predictor.grid.n)
    else:
        from deepscope.cryoem.predictor import Picker

        network = Picker.from_checkpoint(name, engine="torch").model
    example = torch.zeros(shape, dtype=torch.float32)
    return network.eval(), example


def torch_part_network(name: str, part: str):
    """The torch network that the shipped model carries in ``meta[part]``, as its predictor runs it, and an
    example input (only the bar-length network so far)."""
    import torch

    from deepscope.galaxy.predictor import GalaxyPredictor

    if part != "bar_length":
        raise ValueError(f"{name}: no export recipe for its {part!r} network")
    length = GalaxyPredictor.from_checkpoint(name, engine="torch").bar_length
    size = length.input_size or int(length.field["pixels"])
    return length.network.eval(), torch.zeros((2, 3, size, size), dtype=torch.float32)


def export(name: str, folder: Path, part: str | None = None) -> Path:
    """Write ``folder/NAME.onnx`` (or, for a ``part``, ``folder/NAME.PART.onnx``) from the shipped ``NAME.pt``;
    its path."""
    import torch

    entry = _entry(name)
    if part is None:
        network, example = torch_network(name)
        dynamic, out = SPECS[name][2], folder / entry.export_path("onnx").name
    else:
        network, example = torch_part_network(name, part)
        dynamic, out = ("n",), folder / entry.part_export_path(part).name
    dims = {axis: torch.export.Dim(label) if label == "n" else 8 * torch.export.Dim(label)
            for axis, label in zip((0, 2, 3), dynamic)}
    _save_reproducibly(trace_to_onnx(network, example, dims), entry, out)
    return out


def _save_reproducibly(model, entry, out: Path) -> None:
    """Write an exported ``model`` of ``entry``'s ``.pt`` to ``out``: the same network gives the same bytes."""
    import onnx
    import torch

    from deepscope.core.digest import sha256
    from deepscope.core.onnx_engine import SOURCE_KEY, SOURCE_SHA256_KEY

    # The exporter's record of its own symbols (range constraints ...) lists them in an order that
    # varies between runs; nothing reads it, and without it the bytes are reproducible.
    del model.graph.metadata_props[:]
    # Each node also carries the Python stack that made it, with absolute paths and line numbers:
    # the same network exported from another checkout, or after an edit elsewhere in models.py,
    # would give other bytes. The runtime reads none of it.
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for function in model.functions:
        for node in function.node:
            del node.metadata_props[:]
            node.doc_string = ""
    # Provenance inside the file: the engine refuses an .onnx whose source is not the .pt in hand.
    for key, value in ((SOURCE_KEY, entry.file), (SOURCE_SHA256_KEY, sha256(entry.path)),
                       ("deepscope_exported_with", f"torch {torch.__version__}, onnx {onnx.__version__}")):
        model.metadata_props.add(key=key, value=value)
    # No producer version drift between otherwise identical exports.
    model.producer_name, model.producer_version = "deepscope scripts/export_onnx.py", ""
    onnx.save_model(model, out)


def export_int8(name: str, folder: Path) -> Path:
    """Write ``folder/NAME.int8.onnx`` from ``folder/NAME.onnx`` (see the module docstring); its path."""
    entry = _entry(name)
    calibration = _galaxy_calibration(name) if entry.domain == "galaxy" else _cryoem_calibration(name)
    return quantise_int8(folder / entry.export_path("onnx").name, folder / entry.export_path("onnx-int8").name,
                         calibration)


def _galaxy_calibration(name: str):
    """:data:`CALIBRATION_CUTOUTS` training cutouts, as the network sees them."""
    import numpy as np
    import pandas as pd

    from deepscope.galaxy.predictor import GalaxyPredictor
    from deepscope.galaxy.preprocess import pixels_to_input

    data = SHARED_DATA / INT8_CALIBRATION[name]
    labels = pd.read_csv(data / "labels.csv")
    files = labels[labels.split == "train"].file.sample(CALIBRATION_CUTOUTS, random_state=0)
    predictor = GalaxyPredictor.from_checkpoint(name, engine="torch")
    cutouts = np.stack([predictor.load_input(data / file) for file in files])
    if predictor.canonical_scale is not None:  # calibrated on what the network sees: the rescaled cutouts
        cutouts = pixels_to_input(predictor.rescaled(cutouts))
    return cutouts


def _cryoem_calibration(name: str):
    """The picker's own real training micrographs at its working scale, as ``cryoem pick`` feeds them.

    A list of one ``(1, 1, rows, cols)`` float32 array per micrograph: the data sets' working sizes differ.
    (Fed one at a time or stacked, the min-max calibration writes the same bytes.)
    """
    import numpy as np

    from deepscope.cryoem.predictor import Picker
    from deepscope.cryoem.preprocess import load_for_picking

    picker = Picker.from_checkpoint(name, engine="torch")
    images = []
    for folder, diameter in CRYOEM_MICROGRAPHS.items():
        for path in sorted((SHARED_DATA / INT8_CALIBRATION[name] / folder).iterdir()):
            # the simulated micrographs it also saw are not kept on disk
            if path.stem in picker.seen_micrographs:
                image = load_for_picking(path, diameter, picker.working_diameter)[0]
                # padded as predict_maps pads: the U-Net takes multiples of 8
                padding = [(0, -n % 8) for n in image.shape]
                images.append(np.pad(image, padding, mode="reflect")[None, None].astype(np.float32))
    return images


def export_all(name: str, folder: Path) -> list[Path]:
    """Every export of one shipped model into ``folder``: the ``.onnx``, the int8 one where it has one,
    and its parts' (``part_exports``)."""
    written = [export(name, folder)]
    if name in INT8_CALIBRATION:
        written.append(export_int8(name, folder))
    return written + [export(name, folder, part) for part in _entry(name).part_exports]


def record_sums(paths: list[Path]) -> None:
    """Add the exported files' SHA-256 to the package's ``SHA256SUMS.json`` (the ``.pt`` entries stay)."""
    from deepscope.core.digest import sha256
    from deepscope.registry import SUMS_NAME, weights_dir

    sums_path = weights_dir() / SUMS_NAME
    sums = json.loads(sums_path.read_text())
    sums.update({path.name: sha256(path) for path in paths})
    sums_path.write_text(json.dumps(dict(sorted(sums.items())), indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(SPECS), help=f"shipped models (default: {' '.join(SPECS)})")
    parser.add_argument("--check", action="store_true",
                        help="export into a temporary folder and compare with the shipped .onnx files")
    args = parser.parse_args()

    from deepscope.registry import weights_dir

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.names:
                for fresh in export_all(name, Path(tmp)):
                    shipped = weights_dir() / fresh.name
                    same = shipped.is_file() and fresh.read_bytes() == shipped.read_bytes()
                    digest = hashlib.sha256(fresh.read_bytes()).hexdigest()
                    print(f"{fresh.name}: {'identical' if same else 'DIFFERS'} ({digest[:16]})")
        return
    written = [path for name in args.names for path in export_all(name, weights_dir())]
    record_sums(written)
    for path in written:
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
