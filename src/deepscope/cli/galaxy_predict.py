"""Predict whether galaxies are barred (or another trained target).

INPUT are cutout files or directories (searched for JPEG, PNG and FITS).
Writes one row per input: `file`, `p_bar` (probability of a bar) and
`barred` (0/1 at the model's threshold). Bad files are listed on stderr and
the exit status is 1, but every good file still gets its row.

example:
  deepscope galaxy predict ../shared/data/galaxy/sdss_gz2_bars/images --out pred.csv
"""


def add_args(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="cutout files or directories")
    parser.add_argument("--out", required=True, metavar="PRED.csv", help="output table (.csv or .parquet)")
    parser.add_argument("--model", metavar="NAME_OR_RUN_DIR",
                        help="shipped model name (galaxy_bars, galaxy_morphology), run directory or "
                             ".pt file (default: the shipped bar model)")
    parser.add_argument("--batch-size", type=int, default=512, help="cutouts per forward pass (default 512)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")


def main(args):
    from deepscope.galaxy.predict import predict_galaxies

    predict_galaxies(args.inputs, args.out, model=args.model, batch_size=args.batch_size, threads=args.threads)
