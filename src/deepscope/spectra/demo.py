"""The spectra section of ``deepscope demo``: the shipped model on bundled samples."""

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "spectra"


def add_demo_section(report, out_dir):
    """Classify the bundled sample spectra and add a table and a plot.

    Parameters
    ----------
    report : deepscope.core.report.Report
    out_dir : str or Path
        The demo's output directory (the predictions table is written there).

    Returns
    -------
    pandas.DataFrame
        One row per sample: catalogue type, network and template predictions.
    """
    import numpy as np
    import pandas as pd

    from deepscope.core.files import write_table
    from deepscope.core.plots import scatter_figure
    from deepscope.spectra.evaluate import name_type_axes
    from deepscope.spectra.io.files import spectra_manifest
    from deepscope.spectra.mktype import parse_mk
    from deepscope.spectra.predictor import SpectraPredictor
    from deepscope.spectra.synthetic import make_oddity
    from deepscope.spectra.io.spectrum import Spectrum

    manifest = spectra_manifest([SAMPLES / "labels.csv"])
    predictor = SpectraPredictor.from_checkpoint()
    items = [predictor.load_input(path) for path in manifest["path"]]
    # One input that is not a star, to show what the flag is for.
    qso = make_oddity("qso_like", np.random.default_rng(0))
    items.append(predictor.prepare(Spectrum(*qso, np.ones(qso[0].size, bool)), "synthetic QSO-like spectrum"))
    network = pd.DataFrame(predictor.assess(items))
    template = pd.DataFrame(predictor.matcher.predict(np.stack([i.x for i in items])))
    table = pd.DataFrame({
        "file": [*manifest["file"], "(synthetic QSO-like spectrum)"],
        "format": [*manifest["collection"], "-"], "catalogue type": [*manifest["sptype"], "not a star"],
        "network": network["sptype"], "confidence": network["confidence"], "flag": network["flag"],
        "rv_kms": network["rv_kms"], "code": network["code"], "template matching": template["sptype"],
    })
    write_table(table, Path(out_dir) / "spectra_predictions.csv")
    report.heading("Stellar spectra: MK types")
    report.text("The shipped spectral classifier on real sample spectra in five file formats. These "
                "samples were part of its training data: this shows the pipeline, not its accuracy "
                "(see the leave-one-library-out table in docs/spectra.md). `confidence` is the calibrated "
                "probability that the main class is right; `flag` says why a type should not be trusted "
                "(low_snr, short_coverage, missing_mk_lines: no type, negative_flux, out_of_distribution, "
                "no_rv); `rv_kms` is the "
                "radial velocity measured and undone before typing (km/s, positive receding).")
    report.table(table, index=False)
    expected = [parse_mk(s).temperature_index if parse_mk(s) else None for s in manifest["sptype"]]
    fig = scatter_figure(pd.Series(expected, dtype=float), network["temperature_index"][:len(expected)],
                         "catalogue type", "predicted type", "spectra: predicted vs catalogue")
    name_type_axes(fig)
    report.figure(fig, "spectra_demo_scatter")
    return table
