"""Evaluate a galaxy classifier against labels: table, ROC, confusion, calibration.

Writes DIR/report.html with the precision/recall table (per class and
average, as in Abraham et al. 2018), ROC curve, confusion matrix and
calibration, on the chosen split and on its size-matched subset; also
metrics.json, predictions.csv and table_*.csv.

example:
  deepscope galaxy evaluate --labels ../shared/data/galaxy/sdss_gz2_bars/labels.csv --out eval_bars
"""


def add_args(parser):
    parser.add_argument("--labels", required=True, metavar="LABELS_CSV", help="labels table (file + target)")
    parser.add_argument("--model", metavar="NAME_OR_RUN_DIR", help="model (default: the shipped bar model)")
    parser.add_argument("--out", required=True, metavar="DIR", help="report directory")
    parser.add_argument("--target", help="label column (default: the model's target)")
    parser.add_argument("--split", default="test", help="rows to evaluate: test (default), train, val or all")
    parser.add_argument("--seed", type=int, default=0, help="seed of the size-matched subsampling")


def main(args):
    import json

    from deepscope.galaxy.evaluate import evaluate_galaxy

    metrics = evaluate_galaxy(args.labels, args.out, model=args.model, target=args.target, split=args.split,
                              seed=args.seed)
    print(json.dumps({k: {m: metrics[k][m] for m in ("n", "accuracy", "roc_auc") if m in metrics[k]}
                      for k in ("all", "size_matched") if k in metrics}))
