"""Score particle picks against ground truth, beside other pickers.

Picks and truth are matched one-to-one within half a particle diameter
(Hungarian matching) per micrograph, by file stem. OUT gets summary.csv
(precision, recall, F1 per picker, pooled over the micrographs that every
picker and the truth share), per_micrograph.csv, pr_curve.csv/png (our
picks over the score threshold), overlays with --micrographs, and
report.html. Peer pick sets are given as --peer NAME=DIR, adding
,flip-y=HEIGHT when they are upside down relative to the truth (the MRC
frame versus the EMPIAR-10017 JPEGs: flip-y=4096). BOX corners become
centres by the box size stored in each file.

Example:

  P=../shared/data/cryoem/empiar10017
  deepscope cryoem evaluate --picks picks --truth $P/particles --diameter 108 \\
      --peer crYOLO=$P/peer_picks/crYOLO_repic,flip-y=4096 \\
      --peer Topaz=$P/peer_picks/topaz_repic,flip-y=4096 --out eval
"""


def add_args(parser):
    parser.add_argument("--picks", required=True, help="directory of our pick files (<stem>.star ...)")
    parser.add_argument("--truth", required=True, help="directory of true particle-centre files")
    parser.add_argument("--diameter", type=float, required=True, help="particle diameter in pixels")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=DIR[,flip-y=H]",
                        help="another picker's picks (repeatable)")
    parser.add_argument("--picks-flip-y", type=int, metavar="HEIGHT", help="our picks are upside down")
    parser.add_argument("--truth-flip-y", type=int, metavar="HEIGHT", help="the truth is upside down")
    parser.add_argument("--threshold", type=float, help="score threshold applied to our picks")
    parser.add_argument("--micrographs", help="micrograph directory, for overlay images")


def main(args):
    from pathlib import Path

    from deepscope.core.files import check_writable, write_table
    from deepscope.cryoem.workflow import (evaluate_pick_sets, load_pick_set, parse_pick_set,
                                           raise_for_unmatched, write_evaluation_report)
    from deepscope.errors import InputError

    if args.diameter <= 0:
        msg = f"--diameter must be positive, got {args.diameter}"
        raise InputError(msg)
    specs = [parse_pick_set(s) for s in args.peer]
    out_dir = check_writable(args.out, is_dir=True)
    truth = load_pick_set(Path(args.truth), args.truth_flip_y, "truth")
    picks = load_pick_set(Path(args.picks), args.picks_flip_y, "picks")
    peers = [(s["name"], load_pick_set(s["dir"], s["flip_height"], f"{s['name']} picks")) for s in specs]
    result = evaluate_pick_sets(picks, truth, args.diameter, peers, threshold=args.threshold)
    write_table(result["summary"], out_dir / "summary.csv")
    write_table(result["per_micrograph"], out_dir / "per_micrograph.csv")
    write_table(result["curve"], out_dir / "pr_curve.csv")
    write_evaluation_report(result, out_dir, picks, truth, args.diameter,
                            Path(args.micrographs) if args.micrographs else None)
    print(f"# {len(result['shared'])} micrographs: {' '.join(result['shared'])}")
    print(result["summary"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"report: {out_dir / 'report.html'}")
    raise_for_unmatched(result["unmatched"], args.picks)
