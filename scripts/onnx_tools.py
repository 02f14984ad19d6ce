"""Build-time ONNX tools: trace a torch network to ONNX, quantise an export to int8.

``scripts/export_onnx.py`` makes the shipped exports with them; the spectra
benchmarks use them to measure what an export or its int8 version would do,
on the network the shipped export would be. Nothing in the package imports
this module: the package only runs finished exports
(:mod:`deepscope.core.onnx_engine`).

Import it from a benchmark with ``sys.path.insert(0, str(ROOT / "scripts"))``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CALIBRATION_BATCH = 64


def trace_to_onnx(network, example, dynamic_shapes: dict):
    """The ONNX model of ``network`` (eval mode), input ``x``, output ``y``.

    Parameters
    ----------
    network : torch.nn.Module
    example : torch.Tensor
        An input of the right shape; its batch should be 2 or more, or
        torch.export specialises the batch dimension to 1.
    dynamic_shapes : dict
        ``{axis: torch.export.Dim}`` of the input's dynamic dimensions.

    Returns
    -------
    onnx.ModelProto
    """
    import torch

    with torch.no_grad():
        # dynamo=True: the legacy exporter fails on the spectra CNN's AdaptiveAvgPool1d.
        program = torch.onnx.export(network.eval(), (example,), input_names=["x"], output_names=["y"],
                                    dynamic_shapes=(dynamic_shapes,), dynamo=True, optimize=True, verbose=False)
    return program.model_proto


def quantise_int8(fp32: str | Path, out: str | Path, calibration: np.ndarray, **options) -> Path:
    """Write the int8 version of the export ``fp32`` to ``out``, calibrated on ``calibration``.

    ONNX Runtime's static quantisation: QDQ nodes, per-channel int8 weights,
    uint8 activations, the activation ranges calibrated on real inputs fed
    :data:`CALIBRATION_BATCH` at a time.

    Parameters
    ----------
    fp32 : str or Path
        An ONNX export whose input is named ``x``.
    out : str or Path
    calibration : numpy.ndarray or list of numpy.ndarray
        Network inputs (float32), fed :data:`CALIBRATION_BATCH` at a time; a
        list (inputs of different sizes) is fed one element at a time.
    **options
        More ``onnxruntime.quantization.quantize_static`` options
        (``op_types_to_quantize``, ``nodes_to_exclude`` ...).

    Returns
    -------
    Path
        ``out``.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Calibration(CalibrationDataReader):
        def __init__(self):
            batches = calibration if isinstance(calibration, list) else (
                calibration[k:k + CALIBRATION_BATCH] for k in range(0, len(calibration), CALIBRATION_BATCH))
            self.batches = iter({"x": batch} for batch in batches)

        def get_next(self):
            return next(self.batches, None)

    # Per-channel weights: half the p_bar shift of per-tensor on the bar model's test split, for 20% of the speed.
    quantize_static(fp32, out, Calibration(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True, **options)
    return Path(out)
