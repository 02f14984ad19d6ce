"""The CUDA paths: every domain trains and predicts on a GPU, with the CPU's answers.

Skipped on machines without CUDA (CI has none); run them where a GPU is at
hand with ``python -m pytest -m gpu``. Each prediction test runs the same
command on the CPU and on the GPU and compares the outputs: a CUDA path that
moved a batch to the wrong device, lost the channel order or forgot the
shipped threshold would agree with nothing. cuDNN's TF32 convolutions round
differently from the CPU, hence tolerances rather than equality.
"""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from deepscope.cli.main import main
from deepscope.cryoem.io import read_coordinates
from deepscope.samples import sample_dir

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _run(*argv):
    assert main(["-q", *map(str, argv)]) == 0, " ".join(map(str, argv))


def test_galaxy_predict_on_the_gpu_gives_the_cpu_probabilities(tmp_path, monkeypatch):
    # The CPU reference is the fp32 torch path: the int8 ONNX default differs by design (up to ~0.01).
    monkeypatch.setenv("DEEPSCOPE_ENGINE", "torch")
    images = sample_dir("galaxy", "bars") / "images"
    for device in ("cpu", "cuda"):
        _run("galaxy", "predict", images, "--out", tmp_path / f"{device}.csv", "--device", device)
    cpu, gpu = (pd.read_csv(tmp_path / f"{d}.csv").set_index("file") for d in ("cpu", "cuda"))
    assert len(gpu) == len(cpu) == len(list(images.glob("*.jpeg")))
    gpu = gpu.loc[cpu.index]
    assert np.abs(gpu["p_bar"] - cpu["p_bar"]).max() < 5e-3
    clear = np.abs(cpu["p_bar"] - cpu["threshold"]) > 5e-3
    assert (gpu.loc[clear, "barred"] == cpu.loc[clear, "barred"]).all()


def test_galaxy_occlusion_and_layers_run_on_the_gpu(tmp_path):
    cutout = sorted((sample_dir("galaxy", "bars") / "images").glob("*.jpeg"))[0]
    _run("galaxy", "occlusion", cutout, "--out", tmp_path / "occlusion.png", "--device", "cuda")
    _run("galaxy", "layers", cutout, "--out", tmp_path / "layers", "--device", "cuda")
    assert (tmp_path / "occlusion.png").stat().st_size > 0 and (tmp_path / "layers" / "report.html").is_file()


@pytest.mark.parametrize("model", ["spectra_mk", "spectra_mk_fast"])
def test_spectra_predict_on_the_gpu_gives_the_cpu_types(tmp_path, model):
    spectra = sample_dir("spectra")
    for device in ("cpu", "cuda"):
        _run("spectra", "predict", spectra, "--out", tmp_path / f"{device}.csv", "--device", device, "--model", model)
    cpu, gpu = (pd.read_csv(tmp_path / f"{d}.csv").set_index("file") for d in ("cpu", "cuda"))
    gpu = gpu.loc[cpu.index]
    assert len(cpu) >= 15
    assert (gpu["sptype"] == cpu["sptype"]).all()
    assert np.abs(gpu["confidence"] - cpu["confidence"]).max() < 0.01
    assert (gpu["flag"].fillna("") == cpu["flag"].fillna("")).all()


def test_a_bulk_table_on_the_gpu_gives_the_cpu_types(tmp_path):
    # 280 rows in one slice: read in reader processes forked after CUDA started in this one.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deepscope.spectra.io.files import read_spectrum

    spectra = [read_spectrum(p) for p in sorted(sample_dir("spectra").glob("miles_*.fits.gz"))] * 40
    table = tmp_path / "table.parquet"
    pq.write_table(pa.table({"wavelength": [s.wave for s in spectra], "flux": [s.flux for s in spectra]}), table)
    for device in ("cpu", "cuda"):
        _run("spectra", "predict", table, "--out", tmp_path / f"{device}.csv", "--partition-size", 300,
             "--read-threads", 2, "--device", device)
    cpu, gpu = (pd.read_csv(tmp_path / f"{d}.csv") for d in ("cpu", "cuda"))
    assert len(gpu) == len(cpu) == len(spectra)
    assert (gpu["sptype"] == cpu["sptype"]).all() and (gpu["file"] == cpu["file"]).all()
    assert np.abs(gpu["confidence"] - cpu["confidence"]).max() < 0.01


def test_cryoem_pick_on_the_gpu_gives_the_cpu_picks(tmp_path):
    micrographs = sample_dir("cryoem")
    for device in ("cpu", "cuda"):
        _run("cryoem", "pick", micrographs, "--diameter", 27, "--out", tmp_path / device, "--device", device)
    for path in sorted(micrographs.glob("*.jpg")):
        cpu, gpu = (read_coordinates(tmp_path / d / f"{path.stem}.star") for d in ("cpu", "cuda"))
        assert len(cpu) > 20 and abs(len(gpu) - len(cpu)) <= 2
        # every GPU pick has a CPU pick within half a pixel, but for the few near the threshold
        distance = np.hypot(*(gpu[["x", "y"]].to_numpy()[:, None, :] - cpu[["x", "y"]].to_numpy()[None]).T)
        assert (distance.min(axis=0) < 0.5).mean() >= 0.95


def test_cryoem_classify_runs_on_the_gpu(tmp_path):
    folder = tmp_path / "mics"
    folder.mkdir()
    stem = "Falcon_2012_06_12-14_33_35_0"
    shutil.copy(sample_dir("cryoem") / f"{stem}.jpg", folder)
    shutil.copy(sample_dir("cryoem") / f"{stem}.csv", tmp_path)
    _run("cryoem", "classify", tmp_path / f"{stem}.csv", "--micrographs", folder, "--diameter", 27,
         "--classes", 4, "--out", tmp_path / "classes", "--device", "cuda")
    particles = pd.read_csv(tmp_path / "classes" / "particles.csv")
    assert len(particles) == len(pd.read_csv(tmp_path / f"{stem}.csv"))
    assert particles["class"].nunique() >= 2


def test_every_domain_trains_on_the_gpu(tmp_path):
    from cryoem.cryoem_helpers import write_blob_micrographs

    bars = sample_dir("galaxy", "bars")
    labels = pd.read_csv(bars / "labels.csv")
    labels["file"] = [str(bars / name) for name in labels["file"]]
    labels["split"] = "train"
    labels.to_csv(tmp_path / "galaxy.csv", index=False)
    _run("galaxy", "train", "--data", tmp_path / "galaxy.csv", "--out", tmp_path / "galaxy_run",
         "--epochs", 1, "--batch-size", 8, "--device", "cuda")

    spectra = sample_dir("spectra")
    labels = pd.read_csv(spectra / "labels.csv")
    labels["file"] = [str(spectra / name) for name in labels["file"]]
    labels.to_csv(tmp_path / "spectra.csv", index=False)
    _run("spectra", "train", "--data", tmp_path / "spectra.csv", "--out", tmp_path / "spectra_run",
         "--arch", "spectra_ann", "--members", 1, "--epochs", 2, "--device", "cuda")

    blobs = write_blob_micrographs(tmp_path / "blobs", seed=1)
    _run("cryoem", "train", "--micrographs", blobs / "mics", "--coords", blobs / "coords", "--diameter", 8,
         "--working-diameter", 8, "--out", tmp_path / "cryoem_run", "--val", "m2", "--epochs", 1,
         "--width", 4, "--depth", 2, "--patches", 16, "--batch-size", 8, "--enhance", "off", "--device", "cuda")
    for run in ("galaxy_run", "spectra_run", "cryoem_run"):
        assert (tmp_path / run / "best.pt").is_file(), run
