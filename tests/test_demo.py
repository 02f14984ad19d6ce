"""`deepscope demo` runs every shipped model offline on bundled samples."""

from deepscope.cli.main import main
from deepscope.core.checkpoint import shipped_checkpoint, shipped_weights_dir


def test_shipped_weights_pass_their_hashes():
    names = sorted(p.name for p in shipped_weights_dir().glob("*.pt"))
    assert {"galaxy_bars.pt", "galaxy_morphology.pt", "spectra_mk.pt"} <= set(names)
    for name in names:
        assert shipped_checkpoint(name).is_file()


def test_demo_writes_report_with_figures(tmp_path, capsys):
    assert main(["-q", "demo", "--out", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    for section in ("Galaxy bars", "Stellar spectra", "Cryo-EM particle picking"):
        assert f"<h2>{section}" in html
    assert "Precision %" in html
    pngs = list(tmp_path.glob("*.png"))
    assert len(pngs) >= 3
    assert all(f'src="{p.name}"' in html for p in pngs)
