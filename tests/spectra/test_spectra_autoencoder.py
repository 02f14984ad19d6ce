"""The autoencoder command on a toy library, mode by mode: pretrain, embed, denoise, compress, outliers."""

import json

import pandas as pd
import pytest
from test_spectra_cli import _write_library

from deepscope.cli.main import main


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory):
    root = tmp_path_factory.mktemp("ae")
    labels = _write_library(root / "lib", 80, seed=5)
    assert main(["-q", "spectra", "autoencoder", "pretrain", str(root / "lib"), "--out", str(root / "ae"), "--epochs", "15"]) == 0
    return root, labels


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_embed_map_beats_chance(autoencoder, capsys):
    root, labels = autoencoder
    capsys.readouterr()
    assert main(["-q", "spectra", "autoencoder", "embed", "--labels", str(labels), "--model", str(root / "ae"),
                 "--out", str(root / "map.png")]) == 0
    result = _json(capsys)
    assert (root / "map.png").stat().st_size > 1000
    assert result["knn_main_class_accuracy"] > result["chance"]


def test_denoise_raises_snr(autoencoder, capsys):
    root, _ = autoencoder
    capsys.readouterr()
    assert main(["-q", "spectra", "autoencoder", "denoise", str(root / "lib"), "--model", str(root / "ae"), "--snr", "10",
                 "--out", str(root / "dn.csv")]) == 0
    result = _json(capsys)
    assert result["snr_in"] == pytest.approx(10, rel=0.1) and result["snr_gain"] > 1.2
    assert len(pd.read_csv(root / "dn.csv")) == 80


def test_compress_ratio_and_codes(autoencoder, capsys):
    root, _ = autoencoder
    capsys.readouterr()
    assert main(["spectra", "autoencoder", "compress", str(root / "lib"), "--model", str(root / "ae"),
                 "--out", str(root / "codes.csv"), "-q"]) == 0
    result = _json(capsys)
    codes = pd.read_csv(root / "codes.csv")
    assert result["compression_ratio"] == pytest.approx(580 / 16)
    assert codes.shape == (80, 17) and result["rms_error"] < 0.2


def test_injected_oddities_rank_first(autoencoder, capsys):
    root, _ = autoencoder
    capsys.readouterr()
    assert main(["-q", "spectra", "autoencoder", "outliers", str(root / "lib"), "--model", str(root / "ae"), "--inject", "6",
                 "--out", str(root / "odd.csv")]) == 0
    result = _json(capsys)
    assert result["injected_in_top"] >= 4
    ranked = pd.read_csv(root / "odd.csv")
    assert ranked["reconstruction_rms"].is_monotonic_decreasing and ranked["rank"].iloc[0] == 1


def test_bad_file_is_listed_after_good_results(autoencoder, tmp_path, capsys):
    root, _ = autoencoder
    (tmp_path / "broken.fits").write_bytes(b"SIMPLE  = broken")
    out = tmp_path / "codes.csv"
    code = main(["-q", "spectra", "autoencoder", "compress", str(root / "lib" / "star000.fits"), str(tmp_path / "broken.fits"),
                 "--model", str(root / "ae"), "--out", str(out)])
    assert code == 1 and len(pd.read_csv(out)) == 1
    assert "broken.fits" in capsys.readouterr().err


def test_classifier_is_not_an_autoencoder(tmp_path, capsys):
    from deepscope.core.checkpoint import save_checkpoint
    from deepscope.registry import create_model

    save_checkpoint(tmp_path / "ann.pt", "spectra_ann", {}, create_model("spectra_ann"))
    code = main(["spectra", "autoencoder", "compress", str(tmp_path), "--model", str(tmp_path / "ann.pt"), "--out",
                 str(tmp_path / "c.csv")])
    assert code == 1 and "not a spectra_autoencoder" in capsys.readouterr().err


def test_old_spellings_are_deprecated_aliases_with_the_same_options_and_result(autoencoder, capsys, caplog):
    import argparse

    from deepscope.cli.main import build_parser

    def _subparsers(parser):
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

    spectra = _subparsers(build_parser())["spectra"]
    modes = _subparsers(_subparsers(spectra)["autoencoder"])
    for mode in ("pretrain", "embed", "denoise", "compress", "outliers"):
        alias = _subparsers(spectra)[mode]
        assert "deprecated alias of `deepscope spectra autoencoder" in alias.description.lower()
        assert [a.option_strings for a in alias._actions] == [a.option_strings for a in modes[mode]._actions]
    root, _ = autoencoder
    capsys.readouterr()
    with caplog.at_level("WARNING"):
        assert main(["spectra", "compress", str(root / "lib"), "--model", str(root / "ae"),
                     "--out", str(root / "old.csv")]) == 0
    assert any("'deepscope spectra compress' is deprecated" in r.getMessage() for r in caplog.records)
    assert main(["-q", "spectra", "autoencoder", "compress", str(root / "lib"), "--model", str(root / "ae"),
                 "--out", str(root / "new.csv")]) == 0
    assert pd.read_csv(root / "old.csv").equals(pd.read_csv(root / "new.csv"))


def test_a_mode_is_required(capsys):
    with pytest.raises(SystemExit):
        main(["spectra", "autoencoder"])
    assert "MODE" in capsys.readouterr().err
