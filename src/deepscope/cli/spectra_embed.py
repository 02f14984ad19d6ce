"""Map spectra to 2-D with the autoencoder's code, coloured by main class (PNG).

Prints how often a labelled spectrum's 5 nearest neighbours on the map share
its main class (5-fold cross-validated), beside chance.

example:
  deepscope spectra embed ../shared/data/spectra/stelib \\
      --labels ../shared/data/spectra/miles/labels.csv --model runs/spectra_ae --out map.png
"""

from deepscope.cli.spectra_options import add_autoencoder_args, report_result


def add_args(parser):
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="unlabelled spectrum files or directories")
    parser.add_argument("--labels", nargs="*", default=[], metavar="LABELS_CSV",
                        help="labelled spectra, coloured by main class (default: none)")
    add_autoencoder_args(parser)
    parser.add_argument("--out", required=True, metavar="MAP.png", help="output image (required)")


def main(args):
    from deepscope.errors import InputError
    from deepscope.spectra.autoencoder import embed

    if not args.inputs and not args.labels:
        msg = "give spectra (INPUT) or --labels tables to embed"
        raise InputError(msg)
    result = embed(args.inputs, args.out, args.model, args.labels, device=args.device,
                   threads=args.threads)
    report_result(result)
