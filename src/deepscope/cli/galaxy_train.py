"""Train a galaxy classifier (bars by default) on a labels CSV.

The CSV has a `file` column (paths relative to the CSV) and the target column
(`barred` 0/1 by default). Rows with split == test are never used; a
stratified share of the rest validates (early stopping, and the decision
threshold that `galaxy predict` applies: the one with the best balanced
accuracy on it). The checkpoint records the field of view of the cutouts
(--field), which `galaxy cutout --model` cuts to and `galaxy predict`
checks cutouts against. Training cutouts are turned, mirrored and zoomed at
random; --zoom sets the range of zooms (0.6 1.6 teaches the network galaxies
from 0.6x to 1.6x the size they have in the training cutouts, as fields cut
wider or tighter show them); the checkpoint records it, and the range of
apparent sizes it showed, outside which `galaxy predict` sets scale_flag.
--canonical-scale SMALLEST LARGEST instead brings every cutout to one apparent
size before the network, training and prediction alike: each is zoomed so
that its bright fraction is the training cutouts' median, the zoom clipped to
the range; scale_flag then names the galaxies the clip left too small or large.
Rerunning the same command resumes an interrupted run (a finished one is
left as it is); a RUN_DIR holding a run with other settings is refused
unless --resume.

examples:
  deepscope galaxy train --data ../shared/data/galaxy/sdss_gz2_bars/labels.csv --out runs/bars
  deepscope galaxy train --data ../shared/data/galaxy/sdss_gz_ellip_spiral/labels.csv \\
      --target morphology --out runs/morphology
  deepscope galaxy train --data cutouts/cutouts.csv --field 5xdeVRad_r --out runs/bars_scaled
  deepscope galaxy train --data ../shared/data/galaxy/sdss_gz2_bars/labels.csv --zoom 0.6 1.6 \\
      --epochs 70 --patience 70 --out runs/bars_zoom
  deepscope galaxy train --data ../shared/data/galaxy/sdss_gz2_bars/labels.csv --canonical-scale 0.6 1.6 \\
      --epochs 70 --patience 70 --out runs/bars_canonical_scale
"""


def add_args(parser):
    from deepscope.cli.train_options import add_train_args
    from deepscope.galaxy.dataset import DEFAULT_ZOOM_RANGE
    from deepscope.galaxy.field import SDSS_CUTOUT_FIELD
    from deepscope.galaxy.train import DEFAULT_CONFIG, DEFAULT_INPUT_SIZE

    parser.add_argument("--data", required=True, metavar="LABELS_CSV",
                        help="labels table: file + target column (required)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (required)")
    parser.add_argument("--target", default="barred", help="label column (default barred; e.g. morphology)")
    parser.add_argument("--input-size", type=int, default=DEFAULT_INPUT_SIZE,
                        help=f"network input side in pixels (default {DEFAULT_INPUT_SIZE})")
    parser.add_argument("--field", metavar="SPEC",
                        help="field of view of the training cutouts, recorded in the checkpoint: a side in arcsec "
                             "(19.2) or K times a radius column in arcsec (5xdeVRad_r) (default: the labels "
                             f"table's field_arcsec column when present, else {SDSS_CUTOUT_FIELD['arcsec']:g}, the "
                             "field of the shared SDSS cutouts)")
    parser.add_argument("--zoom", nargs=2, type=float, metavar=("SMALLEST", "LARGEST"),
                        default=list(DEFAULT_ZOOM_RANGE),
                        help="range of the random zooms of the training cutouts, drawn log-uniformly (default "
                             f"{DEFAULT_ZOOM_RANGE[0]:.3g} {DEFAULT_ZOOM_RANGE[1]:.3g})")
    parser.add_argument("--canonical-scale", nargs=2, type=float, metavar=("SMALLEST", "LARGEST"),
                        help="zoom every cutout (training, validation and later predict) to the training "
                             "cutouts' median apparent size, the zoom clipped to this range (default: off)")
    add_train_args(parser, DEFAULT_CONFIG)


def main(args):
    import json

    from deepscope.cli.options import refuse_unknown_arch
    from deepscope.errors import InputError

    # First, before any data is read: a wrong --arch or --zoom fails in a second.
    refuse_unknown_arch(args.arch, "galaxy")
    smallest, largest = args.zoom
    if not 0 < smallest <= largest:
        msg = f"--zoom {smallest:g} {largest:g}: give the smallest zoom, then the largest, both above 0"
        raise InputError(msg)
    canonical = args.canonical_scale
    if canonical is not None and not 0 < canonical[0] <= 1 <= canonical[1]:
        msg = (f"--canonical-scale {canonical[0]:g} {canonical[1]:g}: give the smallest zoom (at most 1), "
               "then the largest (at least 1)")
        raise InputError(msg)

    from deepscope.cli.train_options import config_from_args, is_primary_process
    from deepscope.galaxy.field import parse_field
    from deepscope.galaxy.train import DEFAULT_CONFIG, train_galaxy

    primary = is_primary_process()
    config = config_from_args(args, DEFAULT_CONFIG)
    field = None if args.field is None else parse_field(args.field, args.input_size)
    summary = train_galaxy(args.data, args.out, target=args.target, config=config, input_size=args.input_size,
                           resume=args.resume, progress=primary, field=field, zoom_range=(smallest, largest),
                           canonical_scale=None if canonical is None else tuple(canonical))
    if primary:
        print(json.dumps({k: summary[k] for k in ("best_val_score", "best_epoch", "threshold", "n_train", "n_val")}))
