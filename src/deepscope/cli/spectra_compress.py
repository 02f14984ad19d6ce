"""Store spectra as autoencoder codes; prints compression ratio and reconstruction error.

example:
  deepscope spectra compress ../shared/data/spectra/miles --model runs/spectra_ae --out codes.parquet
"""

from deepscope.cli.spectra_options import add_autoencoder_args, report_result


def add_args(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="spectrum files or directories")
    add_autoencoder_args(parser)
    parser.add_argument("--out", required=True, metavar="CODES", help="codes table (.csv or .parquet) (required)")


def main(args):
    from deepscope.spectra.autoencoder import compress

    result = compress(args.inputs, args.out, args.model, device=args.device, threads=args.threads)
    report_result(result)
