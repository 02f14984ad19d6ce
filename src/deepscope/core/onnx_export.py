"""The project's one way to trace a torch network to ONNX (build time, never at run time).

``scripts/export_onnx.py`` makes the shipped exports with it (and then
strips what would make the bytes irreproducible and records where they came
from); the spectra int8 benchmark exports its held-out ensembles with it, so
what it measures is the network the shipped export would be. See
:mod:`deepscope.core.onnx_engine` for how exports are run.
"""

from __future__ import annotations


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
