"""The shipped spectral classifiers give the same answers on ONNX Runtime as on torch."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from deepscope.core.onnx_engine import OnnxNetwork  # noqa: E402
from deepscope.samples import sample_dir  # noqa: E402
from deepscope.spectra.predictor import SpectraPredictor  # noqa: E402


@pytest.mark.parametrize("name", ["spectra_mk", "spectra_mk_fast"])
def test_onnx_outputs_and_types_match_torch_on_the_bundled_spectra(name):
    fast = SpectraPredictor.from_checkpoint(name, engine="onnx")
    torch_run = SpectraPredictor.from_checkpoint(name, engine="torch")
    assert isinstance(fast.network, OnnxNetwork) and torch_run.network is torch_run.model
    files = sorted(p for p in sample_dir("spectra").iterdir() if p.name not in ("README.md", "labels.csv"))
    x = np.stack([fast.load_input(path).x for path in files])
    np.testing.assert_allclose(fast.outputs(x), torch_run.outputs(x), atol=1e-4, rtol=0)
    assert [row["sptype"] for row in fast.classify(x)] == [row["sptype"] for row in torch_run.classify(x)]
