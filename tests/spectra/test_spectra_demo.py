"""The shipped spectral model and the demo section, offline from the package alone."""

import pandas as pd

from deepscope.cli.main import main
from deepscope.core.report import Report
from deepscope.spectra.demo import SAMPLES, add_demo_section


def test_demo_section_classifies_every_sample(tmp_path):
    report = Report(tmp_path, "demo")
    table = add_demo_section(report, tmp_path)
    report.write()
    labels = pd.read_csv(SAMPLES / "labels.csv")
    # One row per sample, then a synthetic QSO-like spectrum that shows what the flag is for.
    assert len(table) == len(labels) + 1
    assert table["network"].str.match(r"^[OBAFGKM]\d").all()
    assert table["flag"].iloc[-1] == "out_of_distribution"
    assert table["rv_kms"].iloc[:-1].abs().max() < 100  # library stars, at rest or nearly
    assert (tmp_path / "spectra_predictions.csv").is_file()
    assert "Stellar spectra" in (tmp_path / "report.html").read_text()


def test_predict_with_the_shipped_model(tmp_path, capsys):
    out = tmp_path / "pred.csv"
    assert main(["-q", "spectra", "predict", str(SAMPLES), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == len(pd.read_csv(SAMPLES / "labels.csv"))
    assert list(table.columns[:6]) == ["file", "sptype", "main_class", "subclass", "lum_class", "code"]
