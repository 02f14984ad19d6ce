"""2D-classify picked particles and report, per picker, the fraction of picks in junk classes.

COORDS are coordinate files or directories of them (STAR, BOX, CryoPPP CSV,
cryoSPARC .cs), paired with the micrographs of --micrographs by file stem.
Each directory is one picker, named after it; NAME=PATH names it, and
PATH,flip-y=HEIGHT (or --flip-y HEIGHT for all) flips a set that is upside
down. The particles of every set are extracted (a box of 1.5 diameters,
downsampled to --size px, normalised outside the particle disk) and
classified together without references: rotation-invariant clustering,
then rounds of in-plane alignment to the class averages and re-averaging.
A class is junk when its average does not look like a centred particle;
a pick in a particle class is junk too when it matches the particle classes
(half-set averages that do not contain it) no better than --background-quantile
of background boxes cut from the same micrographs at least one diameter from
every pick (see report.html for both rules).

--out DIR gets class_averages.mrcs and class_averages.png (largest class first,
with particle counts and the verdict), classes.csv (class, n, junk, score),
particles.csv (micrograph, x, y, class, junk, picker, match: one row per
input coordinate, coordinates as read; match is the pick's correlation with
the particle classes), junk_by_picker.csv and report.html (the fraction of
each picker's picks called junk, beside the truth-matched
false-pick fraction with --truth). Nothing is written unless every input
is good.

Example:

  C=../shared/data/cryoem/empiar10017
  deepscope cryoem classify picks crYOLO=$C/peer_picks/crYOLO_repic,flip-y=4096 \\
      --micrographs $C/micrographs --diameter 108 --truth $C/particles --out classes
"""

from deepscope.cli.cryoem_extract import add_particle_source_args
from deepscope.cli.options import add_device_arg, add_flip_y_arg, add_threads_arg
from deepscope.cryoem.classify2d.background import BACKGROUND_QUANTILE
from deepscope.cryoem.classify2d.run import IMAGE_SIZE


def add_args(parser):
    add_particle_source_args(parser, "coordinate files or directories, one picker each: [NAME=]PATH[,flip-y=HEIGHT]",
                             "particle diameter in micrograph pixels")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (required)")
    parser.add_argument("--classes", type=int, metavar="K",
                        help="number of classes (default: one per 50 particles, 2 to 50)")
    parser.add_argument("--truth", metavar="PATH[,flip-y=HEIGHT]",
                        help="true particle centres, for the truth-matched false-pick fraction (default: none)")
    parser.add_argument("--box", type=int, metavar="PX",
                        help="box side in micrograph pixels (default: 1.5 x the diameter)")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, metavar="PX",
                        help=f"particle images are downsampled to PX pixels (default {IMAGE_SIZE})")
    parser.add_argument("--background-quantile", type=float, default=BACKGROUND_QUANTILE, metavar="Q",
                        help="a pick is junk when it matches the particle classes no better than this fraction of "
                             f"background boxes (default {BACKGROUND_QUANTILE:g}; 0: judge picks by their class alone)")
    parser.add_argument("--iterations", type=int, default=6, metavar="N",
                        help="alignment and re-averaging rounds (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial clustering (default 0)")
    add_flip_y_arg(parser)
    add_device_arg(parser)
    add_threads_arg(parser)


def main(args):
    import torch

    from deepscope.cryoem.classify2d.run import check_output_dir, classify_pick_sets, write_classify_outputs
    from deepscope.cryoem.pick_sets import gather_pick_sets
    from deepscope.errors import InputError

    if args.diameter <= 0:
        msg = f"--diameter must be positive, got {args.diameter:g}"
        raise InputError(msg)
    for option, value, low in (("--classes", args.classes, 1), ("--box", args.box, 1), ("--size", args.size, 16),
                               ("--iterations", args.iterations, 0)):
        if value is not None and value < low:
            msg = f"{option} must be at least {low}, got {value}"
            raise InputError(msg)
    if not 0 <= args.background_quantile < 1:
        msg = f"--background-quantile must be at least 0 and below 1, got {args.background_quantile:g}"
        raise InputError(msg)
    if args.threads:
        torch.set_num_threads(args.threads)
    check_output_dir(args.out)
    pick_sets = gather_pick_sets(args.coords, args.flip_y)
    truth = None
    if args.truth:
        truth = gather_pick_sets([args.truth])[0]
        truth.name = "truth"
    result = classify_pick_sets(pick_sets, args.micrographs, args.diameter, n_classes=args.classes, box=args.box,
                                size=args.size, iterations=args.iterations, truth=truth,
                                background_quantile=args.background_quantile, device=args.device, seed=args.seed)
    report = write_classify_outputs(result, args.out)
    print(result.accounting.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"report: {report}")
