"""Score particle picks against ground truth, beside other pickers.

Picks and truth are matched one-to-one within half a particle diameter
(Hungarian matching) per micrograph, by file stem. OUT gets summary.csv
(precision, recall, F1 and median_centre_error_px, the median distance in
pixels of a matched pick from its true centre, per picker, pooled over the
micrographs that every picker and the truth share), per_micrograph.csv, pr_curve.csv/png (our
picks over the score threshold), overlays with --micrographs, and
report.html. Peer pick sets are given as --peer NAME=DIR, adding
,flip-y=HEIGHT when they are upside down relative to the truth (the MRC
frame versus the EMPIAR-10017 JPEGs: flip-y=4096). BOX corners become
centres by the box size stored in each file. A warning names the scored
micrographs that the model which made the picks (--model, else the default
shipped picker) was trained or validated on: their scores are not a test.

Example:

  P=../shared/data/cryoem/empiar10017
  deepscope cryoem evaluate --picks picks --truth $P/particles --diameter 108 \\
      --peer crYOLO=$P/peer_picks/crYOLO_repic,flip-y=4096 \\
      --peer Topaz=$P/peer_picks/topaz_repic,flip-y=4096 --out eval
"""

import argparse


def add_args(parser):
    from deepscope.cli.options import add_flip_y_arg, add_model_arg

    parser.add_argument("--picks", required=True, help="directory of our pick files, <stem>.star ... (required)")
    parser.add_argument("--truth", required=True, help="directory of true particle-centre files (required)")
    parser.add_argument("--diameter", type=float, required=True, help="particle diameter in pixels (required)")
    parser.add_argument("--out", required=True, help="output directory (required)")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=DIR[,flip-y=H]",
                        help="another picker's picks (repeatable; default: none)")
    add_flip_y_arg(parser, "our picks")
    # the older spelling of --flip-y, kept for existing scripts
    parser.add_argument("--picks-flip-y", type=int, dest="flip_y", help=argparse.SUPPRESS)
    add_flip_y_arg(parser, "the true centres", flag="--truth-flip-y")
    parser.add_argument("--threshold", type=float, help="score threshold applied to our picks (default: none)")
    parser.add_argument("--micrographs", help="micrograph directory, for overlay images (default: no overlays)")
    add_model_arg(parser, "cryoem", default_help="the default shipped picker; either way, a warning if the model "
                                                 "made the picks trained or validated on a scored micrograph")


def main(args):
    from deepscope.cryoem.evaluate import evaluate_pick_files, raise_for_unmatched

    result = evaluate_pick_files(args.picks, args.truth, args.diameter, args.out, peers=args.peer,
                                 picks_flip_height=args.flip_y, truth_flip_height=args.truth_flip_y,
                                 threshold=args.threshold, micrograph_dir=args.micrographs, model=args.model)
    print(f"# {len(result['shared'])} micrographs: {' '.join(result['shared'])}")
    print(result["summary"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"report: {result['report']}")
    raise_for_unmatched(result["unmatched"], args.picks)
