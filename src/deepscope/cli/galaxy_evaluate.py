"""Evaluate a galaxy classifier against labels: table, ROC, confusion, calibration.

Writes DIR/report.html with the precision/recall table (per class and
average, as in Abraham et al. 2018), ROC curve, confusion matrix and
calibration, on the chosen split and on its size-matched subset; also
metrics.json, predictions.csv and table_*.csv.

example:
  deepscope galaxy evaluate --labels ../shared/data/galaxy/sdss_gz2_bars/labels.csv --out eval_bars
"""


from deepscope.cli.options import add_device_arg, add_model_arg, add_threads_arg


def add_args(parser):
    parser.add_argument("--labels", required=True, metavar="LABELS_CSV",
                        help="labels table: file + target column, optional split (required)")
    add_model_arg(parser, "galaxy")
    parser.add_argument("--out", required=True, metavar="DIR", help="report directory (required)")
    parser.add_argument("--target", help="label column (default: the model's target, barred for galaxy_bars)")
    parser.add_argument("--split", default="test", help="rows to evaluate: test, train, val or all (default test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the size-matched subsampling (default 0)")
    add_device_arg(parser)
    add_threads_arg(parser)


def main(args):
    import json

    from deepscope.galaxy.evaluate import evaluate_galaxy

    metrics = evaluate_galaxy(args.labels, args.out, model=args.model, target=args.target, split=args.split,
                              seed=args.seed, device=args.device, threads=args.threads)
    print(json.dumps({k: {m: metrics[k][m] for m in ("n", "accuracy", "roc_auc") if m in metrics[k]}
                      for k in ("all", "size_matched") if k in metrics}))
