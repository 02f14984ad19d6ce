"""The registry of networks and the shipped-weights table feed --arch, --model, `deepscope models` and doctor."""

import json
import shutil
import subprocess
import sys

import pytest

from deepscope import registry
from deepscope.core.checkpoint import load_checkpoint
from deepscope.errors import ModelError
from deepscope.registry import (
    DOMAINS, EXPORT_SUFFIXES, SUMS_NAME, check_arch, list_models, list_weights, resolve_model, shipped_entry,
    weights_dir,
)

SHIPPED = ["cryoem_empiar10017", "cryoem_general", "galaxy_bars", "galaxy_bars_rescaled", "galaxy_morphology",
           "spectra_mk", "spectra_mk_fast"]


def test_every_shipped_weight_has_its_story():
    entries = list_weights()
    assert [w.name for w in entries] == SHIPPED
    for entry in entries:
        assert entry.trained_on and entry.figure
        assert len(entry.sha256) == 64
        # The row's network is the one the checkpoint really builds.
        assert load_checkpoint(entry.path)["model"] == entry.arch


def test_one_default_per_domain():
    for domain in DOMAINS:
        assert sum(w.default for w in list_weights(domain)) == 1


def test_the_table_and_the_weights_folder_agree():
    # Every file the table names ships with a recorded sum, and every file that ships has a row.
    sums = json.loads((weights_dir() / SUMS_NAME).read_text())
    named = set()
    for entry in list_weights():
        assert entry.cpu_engine in ("torch", *entry.exports)
        named |= {entry.file, *(path.name for path in entry.export_paths)}
    shipped = {p.name for p in weights_dir().iterdir() if p.suffix in (".pt", ".onnx")}
    assert named == shipped == set(sums)


def test_todays_cpu_defaults():
    # The galaxy models and the pickers run their int8 export on the CPU; spectra fp32.
    assert {w.name: w.cpu_engine for w in list_weights()} == {
        "cryoem_empiar10017": "onnx-int8", "cryoem_general": "onnx-int8", "galaxy_bars": "onnx-int8",
        "galaxy_bars_rescaled": "onnx-int8", "galaxy_morphology": "onnx-int8", "spectra_mk": "onnx", "spectra_mk_fast": "onnx"}
    assert shipped_entry("galaxy_bars", "galaxy").export_path("onnx-int8").name == "galaxy_bars.int8.onnx"
    assert set(EXPORT_SUFFIXES) == {"onnx", "onnx-int8"}


def test_the_table_is_read_without_torch():
    # `deepscope models`, doctor's weights check and --help read it: none may need torch.
    code = (
        "import sys\n"
        "from deepscope.registry import list_weights, resolve_model\n"
        "from deepscope.cli.models import main\n"
        "import argparse\n"
        "main(argparse.Namespace(domain=None))\n"
        "resolve_model('galaxy_bars', 'galaxy')\n"
        "from deepscope.core.doctor import shipped_models\n"
        "assert all(info['status'] == 'ok' for info in shipped_models().values())\n"
        "assert 'torch' not in sys.modules, 'torch imported by the shipped-weights table'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "galaxy_bars  [default]" in out
    assert "exports:    galaxy_bars.onnx, galaxy_bars.int8.onnx, galaxy_bars.bar_length.onnx" in out


def test_cli_help_names_the_shipped_models():
    import argparse

    from deepscope.cli.options import add_model_arg

    parser = argparse.ArgumentParser()
    add_model_arg(parser, "spectra")
    assert "shipped model (spectra_mk, spectra_mk_fast)" in parser.format_help()


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_shipped_name_and_the_default_resolve(domain):
    for entry in list_weights(domain):
        assert resolve_model(entry.name, domain) == entry.path
    default = next(w for w in list_weights(domain) if w.default)
    assert resolve_model(None, domain) == default.path


def test_a_path_names_a_row_only_if_it_is_the_shipped_file(tmp_path):
    shipped = resolve_model("galaxy_bars", "galaxy")
    assert shipped_entry(shipped, "galaxy").name == "galaxy_bars"
    assert shipped_entry(str(shipped), "galaxy").name == "galaxy_bars"
    copy = tmp_path / "galaxy_bars.pt"
    shutil.copyfile(shipped, copy)
    assert shipped_entry(copy, "galaxy") is None  # the same bytes elsewhere: a checkpoint like any other
    assert shipped_entry(tmp_path, "galaxy") is None
    assert shipped_entry("galaxy_bars", "spectra") is None


def test_a_shipped_name_of_another_domain_is_refused():
    with pytest.raises(ModelError, match="shipped spectra models: spectra_mk"):
        resolve_model("galaxy_bars", "spectra")


def test_a_run_directory_passes_through(tmp_path):
    assert resolve_model(tmp_path, "galaxy") == tmp_path


@pytest.fixture()
def weights_copy(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    shutil.copytree(weights_dir(), folder)
    monkeypatch.setattr(registry, "weights_dir", lambda: folder)
    return folder


def test_tampered_shipped_weights_are_refused(weights_copy):
    with (weights_copy / "galaxy_bars.pt").open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelError, match="galaxy_bars.pt: shipped model galaxy_bars fails its SHA-256 check"):
        resolve_model("galaxy_bars", "galaxy")


def test_missing_shipped_weights_are_refused(weights_copy):
    (weights_copy / "spectra_mk.pt").unlink()
    with pytest.raises(ModelError, match="spectra_mk.pt: missing from the installed package"):
        resolve_model(None, "spectra")


@pytest.mark.parametrize(("name", "domain"), [("spectra_cnn", "galaxy"), ("barnet", "spectra"),
                                              ("cryoem_unet", "galaxy"), ("spectra_ensemble", "spectra")])
def test_arch_of_another_domain_or_untrainable_is_refused(name, domain):
    with pytest.raises(ModelError, match=f"choose from: {', '.join(list_models(domain, trainable=True))}$"):
        check_arch(name, domain)


def test_arch_of_the_domain_passes():
    for domain in DOMAINS:
        for name in list_models(domain, trainable=True):
            check_arch(name, domain)
    check_arch(None, "galaxy")


def test_cli_help_lists_the_trainable_networks_of_the_registry():
    from deepscope.cli.options import TRAINABLE_NETWORKS

    for domain in DOMAINS:
        assert list(TRAINABLE_NETWORKS[domain]) == list_models(domain, trainable=True)
