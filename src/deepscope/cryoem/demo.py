"""Cryo-EM section of ``deepscope demo``: contrast enhancement and the shipped picker.

Everything comes from the package: two held-out EMPIAR-10017 micrographs
binned to 1024 px with their true particle centres, and the C-alpha model of
beta-galactosidase for a simulated raw micrograph.
"""

from pathlib import Path

import pandas as pd

from deepscope.cryoem.evaluate import match_picks
from deepscope.cryoem.figures import write_overlay
from deepscope.cryoem.io import read_coordinates
from deepscope.cryoem.predictor import Picker
from deepscope.cryoem.preprocess import enhance_contrast, load_for_picking, to_working_frame
from deepscope.samples import sample_dir

# the bundled micrographs are binned 4x: a 108 px particle is 27 px here
SAMPLE_DIAMETER = 27.0


def _enhancement_figure(raw, enhanced, particles, diameter):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), layout="constrained")
    for ax, image, title in zip(axes, (raw, enhanced), ("raw (simulated, SNR 0.05)", "contrast enhanced")):
        ax.imshow(image, cmap="gray")
        ax.scatter(particles["x"], particles["y"], s=(diameter / 2) ** 2 / 4, facecolors="none",
                   edgecolors="lime", linewidths=0.6)
        ax.set(title=title, xticks=[], yticks=[])
    return fig


def add_demo_section(report, out_dir: Path) -> None:
    """Add contrast enhancement and picking on the bundled samples to the report.

    Parameters
    ----------
    report : deepscope.core.report.Report
    out_dir : Path
        Report directory (overlay PNGs are written there).
    """
    from deepscope.cryoem.synthetic import read_structure, simulate_micrograph

    folder = sample_dir("cryoem")
    report.heading("Cryo-EM particle picking")
    structure = read_structure(folder / "5a1a_ca.pdb.gz")
    raw, particles, diameter = simulate_micrograph(structure, (512, 512), 25, 4.0, snr=0.05, seed=0)
    report.figure(_enhancement_figure(raw, enhance_contrast(raw, diameter), particles, diameter),
                  "cryoem_enhance", "a raw micrograph simulated from beta-galactosidase (true centres circled), "
                  "before and after automatic contrast enhancement")

    picker = Picker.from_checkpoint()
    rows = []
    for path in sorted(folder.glob("*.jpg")):
        image, scale, _ = load_for_picking(path, SAMPLE_DIAMETER, picker.working_diameter)
        picks = picker.pick(image, scale)
        truth = read_coordinates(path.with_suffix(".csv"))
        result = match_picks(picks, truth, SAMPLE_DIAMETER / 2)
        rows.append({"micrograph": path.stem, "picks": len(picks), "true particles": len(truth),
                     "precision": result["precision"], "recall": result["recall"], "F1": result["f1"]})
        name = f"cryoem_picks_{path.stem}.png"
        write_overlay(image, to_working_frame(picks, scale), picker.working_diameter / 2, out_dir / name,
                      to_working_frame(truth, scale))
        report.image(name, f"{path.stem}: picks (green) and true centres (red)")
    report.text(f"The shipped picker (threshold {picker.threshold:.2f}) on two EMPIAR-10017 micrographs held "
                f"out from its training, binned to 1024 px (particle diameter {SAMPLE_DIAMETER:g} px; the "
                f"picker rescales to its working size of {picker.working_diameter:g} px). Matching is "
                f"one-to-one within half a diameter.")
    report.table(pd.DataFrame(rows).set_index("micrograph"), caption="picking on held-out micrographs")
