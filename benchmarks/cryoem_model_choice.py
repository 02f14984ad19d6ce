"""How the shipped cryo-EM picker was chosen: candidates scored on the micrographs they trained and validated on.

Each candidate (a run directory or checkpoint; several at once are averaged
as an ensemble) picks the shipped model's 10 training micrographs and its
validation micrograph ``17_02_43`` with each number of test-time views. The
picks' offset from the CryoPPP labels is measured on the 10 training
micrographs (as :func:`deepscope.cryoem.train.measure_centre_offset` does)
and subtracted; then F1 and the median centre error are printed per
threshold, on validation and on training. The held-out micrographs
(``14_33_35, 15_30_21, 16_44_07``) are never read: they were scored once,
for the chosen model, with ``bench_cryoem_raw.py``.

Measured for issue 13 (validation F1 / median centre error at the tuned threshold):

  candidate                                     views 1        views 4        views 8
  shipped before (40 epochs, seed 0)            0.883 4.84 px  -              0.887 4.68 px
  80 epochs, patience 15, seed 1 (shipped now)  0.890 4.75 px  0.898 4.53 px  0.898 4.52 px
  40 epochs x 512 patches, seed 2               0.890 4.55 px  0.895 4.51 px  -
  both averaged                                 0.894 4.57 px  0.896 4.48 px  -
  disks of 0.3 d instead of 0.5 d (26 epochs)   0.840 5.09 px  -              -

  python benchmarks/cryoem_model_choice.py runs/cryo_s1 [runs/cryo_s2] [--views 1 4 8]
"""

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cryoem" / "empiar10017"
DIAMETER = 108.0
PREFIX = "Falcon_2012_06_12-"
TRAIN = [f"{PREFIX}{s}_0" for s in ("14_57_34", "15_07_41", "15_14_01", "15_17_31", "15_27_22", "16_26_22",
                                     "16_48_06", "16_51_03", "16_55_40", "16_59_12")]
VALIDATION = [f"{PREFIX}17_02_43_0"]


def main():
    from deepscope.cryoem.evaluate import match_picks
    from deepscope.cryoem.io import read_coordinates
    from deepscope.cryoem.picking import find_picks, predict_maps, refine_centres
    from deepscope.cryoem.predictor import REFINE_FRACTION, Picker
    from deepscope.cryoem.preprocess import load_for_picking, to_micrograph_frame

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="run directories or checkpoints; several are averaged")
    parser.add_argument("--views", type=int, nargs="+", default=[1, 4], help="test-time views (1, 2, 4, 8)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.35, 0.4, 0.45, 0.5])
    args = parser.parse_args()

    pickers = [Picker.from_checkpoint(model) for model in args.models]
    first = pickers[0]
    stems = TRAIN + VALIDATION
    images = {s: load_for_picking(DATA / "micrographs" / f"{s}.jpg", DIAMETER, first.working_diameter) for s in stems}
    truth = {s: read_coordinates(DATA / "particles" / f"{s}.csv") for s in stems}

    def picks_of(maps, stem, threshold, offset=(0.0, 0.0)):
        particle, regions = maps
        picks = find_picks(particle, regions, first.working_diameter, threshold, first.nms_fraction,
                           first.edge_fraction)
        picks = to_micrograph_frame(refine_centres(particle, picks, REFINE_FRACTION * first.working_diameter),
                                    images[stem][1])
        return picks.assign(x=picks["x"] - offset[0], y=picks["y"] - offset[1])

    def differences(picks, stem):
        pairs = match_picks(picks, truth[stem], DIAMETER / 2)["pairs"]
        return picks[["x", "y"]].to_numpy()[pairs[:, 0]] - truth[stem][["x", "y"]].to_numpy()[pairs[:, 1]]

    name = " + ".join(Path(model).name for model in args.models)
    for views in args.views:
        maps = {}
        for stem in stems:
            each = [predict_maps(p.model, images[stem][0], p.target, views, run_with=p.network) for p in pickers]
            maps[stem] = (np.mean([m[0] for m in each], axis=0),
                          None if each[0][1] is None else np.mean([m[1] for m in each], axis=0))
        offset = np.median(np.concatenate([differences(picks_of(maps[s], s, first.threshold), s) for s in TRAIN]),
                           axis=0)
        print(f"{name}, {views} view(s): picks sit {offset[0]:+.2f}, {offset[1]:+.2f} px from the labels "
              f"on the training micrographs (subtracted below); tuned threshold {first.threshold}")
        for group, names in (("validation", VALIDATION), ("training", TRAIN)):
            cells = []
            for threshold in args.thresholds:
                tp = fp = fn = 0
                errors = []
                for stem in names:
                    picks = picks_of(maps[stem], stem, threshold, offset)
                    result = match_picks(picks, truth[stem], DIAMETER / 2)
                    tp, fp, fn = tp + result["tp"], fp + result["fp"], fn + result["fn"]
                    errors.append(np.hypot(*differences(picks, stem).T))
                cells.append(f"{threshold}: F1 {2 * tp / (2 * tp + fp + fn):.3f}, "
                             f"{np.median(np.concatenate(errors)):.2f} px")
            print(f"  {group:10s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
