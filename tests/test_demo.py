"""`deepscope demo` runs every shipped model offline on bundled samples."""

from deepscope.cli.main import main
from deepscope.registry import list_weights, verified_file, weights_dir


def test_every_shipped_file_is_registered_and_passes_its_hash():
    names = sorted(p.name for p in weights_dir().glob("*.pt"))
    assert names == sorted(w.file for w in list_weights())
    for entry in list_weights():
        assert verified_file(entry, entry.path) == entry.path


def test_demo_writes_report_with_figures(tmp_path, capsys):
    assert main(["-q", "demo", "--out", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    for section in ("Galaxy bars", "Stellar spectra", "Cryo-EM particle picking"):
        assert f"<h2>{section}" in html
    assert "Precision %" in html
    pngs = list(tmp_path.glob("*.png"))
    assert len(pngs) >= 3
    assert all(f'src="{p.name}"' in html for p in pngs)
