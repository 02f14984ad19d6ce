"""Cryo-EM section of ``deepscope demo``: contrast enhancement, the shipped picker, 2D class averages.

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
# Half of ``cryoem classify``'s alignment rounds: the demo's classes come in
# about half the time and still separate particles from random boxes.
DEMO_ALIGNMENT_ROUNDS = 3


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
    rows, picks_by_stem = [], {}
    for path in sorted(folder.glob("*.jpg")):
        image, scale, _ = load_for_picking(path, SAMPLE_DIAMETER, picker.working_diameter)
        picks = picker.pick(image, scale)
        picks_by_stem[path.stem] = picks
        truth = read_coordinates(path.with_suffix(".csv"))
        result = match_picks(picks, truth, SAMPLE_DIAMETER / 2)
        rows.append({"micrograph": path.stem, "picks": len(picks), "true particles": len(truth),
                     "precision": result["precision"], "recall": result["recall"], "F1": result["f1"]})
        name = f"cryoem_picks_{path.stem}.png"
        write_overlay(image, to_working_frame(picks, scale), picker.working_diameter / 2, out_dir / name,
                      to_working_frame(truth, scale))
        report.image(name, f"{path.stem}: picks (green) and true centres (red)")
    report.text(f"The default picker, cryoem_general (threshold {picker.threshold:.2f}), on two EMPIAR-10017 "
                f"micrographs held out from its training, binned to 1024 px (particle diameter "
                f"{SAMPLE_DIAMETER:g} px; the picker rescales to its working size of "
                f"{picker.working_diameter:g} px). Matching is one-to-one within half a diameter.")
    report.table(pd.DataFrame(rows).set_index("micrograph"), caption="picking on held-out micrographs")
    _add_class_averages(report, out_dir, folder, picks_by_stem)


def _write_pick_set(name: str, tables: dict, folder: Path):
    """Write one STAR file per micrograph into ``folder/name`` and describe them as a pick set."""
    from deepscope.cryoem.coordinates import write_coordinates
    from deepscope.cryoem.pick_sets import PickSet

    (folder / name).mkdir(parents=True, exist_ok=True)
    files = {}
    for stem, table in tables.items():
        files[stem] = folder / name / f"{stem}.star"
        write_coordinates(table, files[stem])
    return PickSet(name, files)


def _random_boxes(truth: pd.DataFrame, shape: tuple[int, int], seed: int) -> pd.DataFrame:
    """As many uniform random centres as true particles, a diameter from the edges: a picker that knows nothing."""
    import numpy as np

    rng = np.random.default_rng(seed)
    height, width = shape
    return pd.DataFrame({"x": rng.uniform(SAMPLE_DIAMETER, width - SAMPLE_DIAMETER, len(truth)),
                         "y": rng.uniform(SAMPLE_DIAMETER, height - SAMPLE_DIAMETER, len(truth))})


def _add_class_averages(report, out_dir: Path, folder: Path, picks_by_stem: dict) -> None:
    """2D-classify the picker's picks, random boxes and the true centres together; show the junk accounting.

    The three sets share one set of classes (as ``cryoem classify`` does with
    several pickers), so the fraction of each set in junk classes is judged
    by the same averages: the field's false-pick accounting.
    """
    from deepscope.cryoem.classify2d.report import ACCOUNTING_HEADINGS, write_montage
    from deepscope.cryoem.classify2d.run import classify_pick_sets
    from deepscope.cryoem.io import read_micrograph

    truths = {stem: read_coordinates(folder / f"{stem}.csv") for stem in picks_by_stem}
    randoms = {stem: _random_boxes(truths[stem], read_micrograph(folder / f"{stem}.jpg").shape, seed)
               for seed, stem in enumerate(sorted(truths))}
    sets_dir = out_dir / "cryoem_pick_sets"
    pick_sets = [_write_pick_set("deepscope", picks_by_stem, sets_dir), _write_pick_set("random", randoms, sets_dir),
                 _write_pick_set("truth", truths, sets_dir)]
    result = classify_pick_sets(pick_sets, folder, SAMPLE_DIAMETER, iterations=DEMO_ALIGNMENT_ROUNDS,
                                truth=pick_sets[-1], progress=False)
    write_montage(result.averages, result.classes, out_dir / "cryoem_class_averages.png")
    report.heading("2D class averages and false-pick accounting", level=3)
    report.text(f"The picks above, as many random boxes, and the true centres, extracted and classified together "
                f"({len(result.classes)} reference-free 2D classes, {DEMO_ALIGNMENT_ROUNDS} alignment rounds; "
                f"`deepscope cryoem classify` does the same on full micrographs). A class is junk when its "
                f"average shows no centred particle, and a box is junk when it is in a junk class or matches "
                f"the particle classes no better than background does ({result.settings['background test']}); "
                f"each set's junk fraction is the share of its boxes called junk, beside the share that "
                f"matches no true particle.")
    report.image("cryoem_class_averages.png", "class averages, largest first: green frame = particle, "
                                              "red frame = junk")
    table = result.accounting.rename(columns={"picker": "pick set", **ACCOUNTING_HEADINGS})
    table.to_csv(out_dir / "cryoem_false_picks.csv", index=False)
    report.table(table.set_index("pick set"), caption="false-pick accounting on the two bundled micrographs "
                                                       "(also cryoem_false_picks.csv)")
