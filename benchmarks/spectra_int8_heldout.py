"""Does an int8 spectra ensemble keep its held-out figures? fp32 against int8 on the library it never saw.

For each ``--holdout`` library, ``--loo DIR/<library>`` is the ensemble
trained without it (``deepscope spectra train`` on the other libraries).
Its network is exported to ONNX as ``scripts/export_onnx.py`` exports the
shipped one, quantised by the project's int8 recipe
(``quantise_int8`` in ``scripts/onnx_tools.py``) with 512 of its own training spectra, whole
(``all``) or only the convolutions after each member's first
(``convolutions``), and the held-out library is scored with each. Choose
on the development libraries (MILES, Pickles), as docs/spectra.md's
recipe was. Measured figures, not asserts.

usage:
  python benchmarks/spectra_int8_heldout.py --loo DIR [--holdout miles pickles] [--variants all convolutions]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # onnx_tools: tracing and the int8 recipe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spectra"
LABELLED = ("miles", "mkclass", "pickles", "kesseli2017", "sdss")
CALIBRATION_SPECTRA = 512


def export_fp32(predictor, path):
    """The predictor's torch network as an ONNX file with a dynamic batch, traced as the shipped exports are."""
    import onnx
    import torch

    from onnx_tools import trace_to_onnx

    onnx.save_model(trace_to_onnx(predictor.model, torch.zeros(2, 2, predictor.grid.n), {0: torch.export.Dim("n")}),
                    path)


def quantise(fp32, out, calibration, variant):
    """Int8 of ``fp32``: every supported node, or the convolutions after each member's first."""
    import onnx

    from onnx_tools import quantise_int8

    options = {}
    if variant == "convolutions":
        convs = [node.name for node in onnx.load(fp32).graph.node if node.op_type == "Conv"]
        # Members are exported one after another, three convolutions each: every third is a first layer.
        options = {"op_types_to_quantize": ["Conv"], "nodes_to_exclude": convs[::3]}
    quantise_int8(fp32, out, calibration, **options)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loo", required=True, type=Path, help="DIR/<library>: the ensemble trained without it")
    parser.add_argument("--holdout", nargs="+", default=["miles", "pickles"])
    parser.add_argument("--variants", nargs="+", default=["all", "convolutions"], choices=["all", "convolutions"])
    args = parser.parse_args()

    from deepscope.core.onnx_engine import OnnxNetwork
    from deepscope.spectra.evaluate import score_predictions
    from deepscope.spectra.decoding import outputs_to_rows
    from deepscope.spectra.predictor import SpectraPredictor
    from deepscope.spectra.preparation.labelled import load_labelled

    rows = []
    for library in args.holdout:
        predictor = SpectraPredictor.from_checkpoint(args.loo / library)
        others = [DATA / name / "labels.csv" for name in LABELLED if name != library]
        _, train_x, _ = load_labelled(others, predictor.grid, predictor.min_coverage, progress=False)
        chosen = np.random.default_rng(0).choice(len(train_x), CALIBRATION_SPECTRA, replace=False)
        manifest, x, _ = load_labelled([DATA / library / "labels.csv"], predictor.grid, predictor.min_coverage,
                                       progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            paths = {"fp32": Path(tmp) / "fp32.onnx"}
            export_fp32(predictor, paths["fp32"])
            for variant in args.variants:
                paths[variant] = Path(tmp) / f"{variant}.onnx"
                quantise(paths["fp32"], paths[variant], train_x[np.sort(chosen)], variant)
            for name, path in paths.items():
                network = OnnxNetwork(path, threads=1)
                outputs = np.concatenate([network.run(x[k:k + 512]) for k in range(0, len(x), 512)])
                metrics, _ = score_predictions(list(manifest["sptype"]), pd.DataFrame(outputs_to_rows(outputs)))
                rows.append({"held out": library, "network": name, "n": metrics["n"],
                             "main class": round(metrics["main_class_accuracy"], 3),
                             "subclass MAE": round(metrics["subclass_mae"], 3),
                             "luminosity class": round(metrics["lum_class_accuracy"], 3)})
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
