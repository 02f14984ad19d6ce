"""Adapt a picker to new micrographs with no labels at all: pick, 2D-classify, keep, fine-tune, repeat.

Round 0 picks MICROGRAPHS with the starting picker (--init: a shipped
picker, run directory or checkpoint; default cryoem_general, the shipped
picker trained for proteins it never saw; --init blob: a
Laplacian-of-Gaussian blob detector at the particle size picks round 0, and
cryoem_general's weights are fine-tuned).
Every round picks generously, at --candidates (0.5) times its picker's own
threshold, classifies the picks in 2D (as cryoem classify does) and keeps
the picks it does not call junk as labels; the next round
fine-tunes the starting picker on them (as cryoem train --init does: same
network, from the starting weights every round; one micrograph validates)
and picks again. It stops after --rounds rounds, or earlier when the kept
set grows by less than 5% or matches the previous round's kept set (F1
0.95 or more: the next round would learn the same). The final picker is the round with the most kept
particles, saved as RUN_DIR/best.pt: pick with it by cryoem pick --model
RUN_DIR (at its own threshold, tuned on the kept picks).
RUN_DIR/round_<r>/ holds each round's picks (STAR), class averages
(classes/class_averages.png), kept picks (labels/) and model;
RUN_DIR/report.html and rounds.csv give picks, kept share, classes kept,
agreement and seconds per round. Rerunning the same command goes on where
it stopped (a finished run is left as it is); a RUN_DIR holding a run with
other settings is refused.

Example (the ribosome micrographs, which the shipped picker never saw):

  deepscope cryoem selftrain ../shared/data/cryoem/ribosome80s_empiar10028/micrographs \\
      --diameter 56 --out runs/ribosome_self --rounds 2
"""


def add_args(parser):
    from deepscope.cli.options import DEVICE_HELP, add_threads_arg
    from deepscope.cryoem.selftrain import SelftrainOptions

    defaults = SelftrainOptions()
    parser.add_argument("micrographs", nargs="+", metavar="MICROGRAPH",
                        help="micrograph files or directories (two or more micrographs)")
    parser.add_argument("--diameter", required=True, metavar="PX|auto",
                        help="particle diameter in micrograph pixels, or auto: estimated from the first micrographs "
                             "(required; a number 1.5x off the estimate is warned about)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse a --diameter 1.5x off the micrographs' own instead of warning (default: warn)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (required)")
    parser.add_argument("--init", metavar="NAME_OR_PATH",
                        help="starting picker: shipped name, run directory or checkpoint, or blob: round 0 "
                             "picked by a blob detector, cryoem_general's weights fine-tuned (default: "
                             "cryoem_general)")
    parser.add_argument("--rounds", type=int, default=defaults.rounds,
                        help=f"most fine-tuning rounds (default {defaults.rounds}; fewer when the rule stops it)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help=f"fine-tuning epochs per round (default {defaults.epochs})")
    parser.add_argument("--patches", type=int, default=defaults.patches,
                        help=f"training patches per epoch (default {defaults.patches})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"training batch size (default {defaults.batch_size})")
    parser.add_argument("--lr", type=float, default=defaults.lr, help=f"learning rate (default {defaults.lr})")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    parser.add_argument("--candidates", type=float, default=defaults.candidates, metavar="FRACTION",
                        help="each round picks candidates at this fraction of its picker's own threshold, for 2D "
                             f"classification to sort (default {defaults.candidates})")
    parser.add_argument("--threshold", type=float,
                        help="a fixed pick score cut for every round instead (default: --candidates)")
    parser.add_argument("--classes", type=int,
                        help="2D classes per round (default: one per 50 picks, 2 to 50, as cryoem classify)")
    parser.add_argument("--enhance", choices=["auto", "on", "off"], default="auto",
                        help="auto (default): decided from the pixels; on: band-pass and histogram equalisation; "
                             "off: pixels as read")
    parser.add_argument("--device", default="cpu", metavar="DEVICE", help=DEVICE_HELP)
    add_threads_arg(parser)


def main(args):
    import sys
    import warnings

    from deepscope.cli.cryoem_pick import diameter_value
    from deepscope.core.files import collect_inputs
    from deepscope.cryoem.io import MICROGRAPH_SUFFIXES
    from deepscope.cryoem.selftrain import SelftrainOptions, selftrain

    diameter = diameter_value(args.diameter)
    options = SelftrainOptions(rounds=args.rounds, epochs=args.epochs, patches=args.patches,
                               batch_size=args.batch_size, lr=args.lr, seed=args.seed, candidates=args.candidates,
                               threshold=args.threshold,
                               n_classes=args.classes, enhance=args.enhance, device=args.device,
                               threads=args.threads)
    with warnings.catch_warnings():
        # one line each, like the errors
        warnings.showwarning = lambda message, *_, **__: print(f"deepscope: warning: {message}", file=sys.stderr)
        result = selftrain(collect_inputs(args.micrographs, MICROGRAPH_SUFFIXES), diameter, args.out, args.init,
                           options, strict=args.strict)
    table = result.rounds
    for row in table.to_dict("records"):
        agreement = "" if row["round"] == 0 else f"\tF1 vs round {row['round'] - 1}'s kept {row['agreement']:.3f}"
        print(f"round {row['round']}\t{row['picks']} picks\t{row['kept']} kept ({row['kept_share']:.0%})\t"
              f"{row['classes_kept']} of {row['classes']} classes{agreement}\t{row['seconds']:.0f} s")
    print(f"final picker: round {result.final_round}'s, {result.run_dir / 'best.pt'} "
          f"(cryoem pick --model {result.run_dir})")
