"""Score a spectral classifier against catalogue types, beside template matching.

Reports main-class accuracy, subclass mean absolute error, the fraction
within one subclass and luminosity-class accuracy, with confusion matrices
and the predicted-vs-expected plot, for the network and for the
chi-square template-matching baseline built from the same training spectra.
The report says how many evaluated spectra the model was trained on.

example:
  deepscope spectra evaluate --labels ../shared/data/spectra/miles/labels.csv \\
      --model runs/spectra --out eval_miles
"""


from deepscope.cli.options import add_network_args


def add_args(parser):
    parser.add_argument("--labels", required=True, nargs="+", metavar="LABELS_CSV",
                        help="labels tables with file and sptype columns (required)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory for metrics.csv, predictions.csv and report.html (required)")
    add_network_args(parser, "spectra")


def main(args):
    from deepscope.spectra.evaluate import evaluate_spectra

    table = evaluate_spectra(args.labels, args.out, model=args.model, device=args.device, threads=args.threads,
                             engine=args.engine)
    print(table.round(3).to_string(index=False))
