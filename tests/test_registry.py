"""One registry of networks and shipped weights feeds --arch, --model, `deepscope models` and doctor."""

import pytest

from deepscope.cli.options import SHIPPED_NAMES
from deepscope.core.checkpoint import load_checkpoint
from deepscope.errors import ModelError
from deepscope.registry import DOMAINS, check_arch, list_models, list_weights, resolve_model

SHIPPED = ["cryoem_empiar10017", "galaxy_bars", "galaxy_morphology", "spectra_mk", "spectra_mk_fast"]


def test_five_shipped_weights_each_with_its_story():
    entries = list_weights()
    assert [w.name for w in entries] == SHIPPED
    for entry in entries:
        assert entry.trained_on and entry.figure
        assert len(entry.sha256) == 64
        # The registered network is the one the checkpoint really builds.
        assert load_checkpoint(entry.path)["model"] == entry.arch


def test_one_default_per_domain():
    for domain in DOMAINS:
        assert sum(w.default for w in list_weights(domain)) == 1


def test_cli_help_names_match_the_registry():
    # --help lists shipped names without importing torch; it must not drift from the registry.
    for domain in DOMAINS:
        assert list(SHIPPED_NAMES[domain]) == [w.name for w in sorted(
            list_weights(domain), key=lambda w: (not w.default, w.name))]


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_shipped_name_and_the_default_resolve(domain):
    for entry in list_weights(domain):
        assert resolve_model(entry.name, domain) == entry.path
    default = next(w for w in list_weights(domain) if w.default)
    assert resolve_model(None, domain) == default.path


def test_a_shipped_name_of_another_domain_is_refused():
    with pytest.raises(ModelError, match="shipped spectra models: spectra_mk"):
        resolve_model("galaxy_bars", "spectra")


def test_a_run_directory_passes_through(tmp_path):
    assert resolve_model(tmp_path, "galaxy") == tmp_path


def test_tampered_shipped_weights_are_refused(tmp_path, monkeypatch):
    import shutil

    from deepscope import registry

    folder = tmp_path / "weights"
    shutil.copytree(registry.weights_dir(), folder)
    monkeypatch.setattr(registry, "weights_dir", lambda: folder)
    with (folder / "galaxy_bars.pt").open("ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelError, match="galaxy_bars fails its SHA-256 check"):
        resolve_model("galaxy_bars", "galaxy")


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
