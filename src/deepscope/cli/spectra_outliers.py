"""Rank spectra by autoencoder reconstruction error, most unusual first.

--inject N adds N oddities (wavelength-reversed, noise-only and emission-line
spectra made from the inputs) and prints how many rank in the top N.

example:
  deepscope spectra outliers ../shared/data/spectra/stelib --model runs/spectra_ae --inject 9 --out odd.csv
"""

from deepscope.cli.spectra_options import add_autoencoder_args, report_result


def add_args(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="spectrum files or directories")
    add_autoencoder_args(parser)
    parser.add_argument("--out", required=True, metavar="TABLE", help="ranked table (.csv or .parquet) (required)")
    parser.add_argument("--inject", type=int, default=0, help="oddities to inject (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the oddities (default 0)")


def main(args):
    from deepscope.spectra.autoencoder import outliers

    result = outliers(args.inputs, args.out, args.model, args.inject, args.seed, device=args.device,
                      threads=args.threads)
    report_result(result)
