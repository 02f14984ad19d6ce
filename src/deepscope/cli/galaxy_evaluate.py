"""Evaluate a galaxy classifier against labels: table, ROC, confusion, calibration.

Writes DIR/report.html with the precision/recall table (per class and
average, as in Abraham et al. 2018), ROC curve, confusion matrix and
calibration, on the chosen split and on its size-matched subset; also
metrics.json, predictions.csv and table_*.csv.

--hoyle, --manga and --stripe82 take independent bar catalogues, matched
on the sky (--match-radius, 2 arcsec): recall on bars drawn by >= 3
volunteers (Hoyle et al. 2011) and specificity on unbarred galaxies of the
same apparent sizes; agreement with MaNGA (barred when Bars >= 0.5, -0.5
left out); accuracy on Stripe 82 galaxies by co-add bar-question votes
(Willett et al. 2013). All headline figures, the size-only baseline and the
paper's 94.1% go into one summary table (table_summary.csv).

examples:
  deepscope galaxy evaluate --labels ../shared/data/galaxy/sdss_gz2_bars/labels.csv --out eval_bars
  deepscope galaxy evaluate --labels ../shared/data/galaxy/sdss_gz2_bars/labels.csv --out eval_bars \
      --hoyle ../shared/data/galaxy/external_bar_labels/hoyle2011_bar_lengths.csv \
      --manga ../shared/data/galaxy/external_bar_labels/manga_bars.csv \
      --stripe82 ../shared/data/galaxy/external_bar_labels/willett2013_table5_stripe82.csv.gz
"""


from deepscope.cli.galaxy_predict import add_augment_arg
from deepscope.cli.options import add_device_arg, add_engine_arg, add_model_arg, add_threads_arg


def add_args(parser):
    parser.add_argument("--labels", required=True, metavar="LABELS_CSV",
                        help="labels table: file + target column, optional split (required)")
    add_model_arg(parser, "galaxy")
    parser.add_argument("--out", required=True, metavar="DIR", help="report directory (required)")
    parser.add_argument("--target", help="label column (default: the model's target, barred for galaxy_bars)")
    parser.add_argument("--split", default="test", help="rows to evaluate: test, train, val or all (default test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the size-matched subsampling (default 0)")
    add_augment_arg(parser)
    evidence = parser.add_argument_group("independent bar evidence (two-class models)")
    evidence.add_argument("--hoyle", metavar="TABLE",
                          help="Hoyle et al. (2011) drawn-bar catalogue: confirmed-bar recall (default: none)")
    evidence.add_argument("--manga", metavar="TABLE",
                          help="MaNGA bar classes (name, objra, objdec, Bars): agreement (default: none)")
    evidence.add_argument("--stripe82", metavar="TABLE",
                          help="Willett et al. (2013) Table 5 Stripe 82 vote counts (default: none)")
    evidence.add_argument("--match-radius", type=float, default=2.0, metavar="ARCSEC",
                          help="sky cross-match radius for these catalogues (default 2)")
    add_device_arg(parser)
    add_engine_arg(parser)
    add_threads_arg(parser)


def main(args):
    import json

    from deepscope.galaxy.evaluate import evaluate_galaxy

    metrics = evaluate_galaxy(args.labels, args.out, model=args.model, target=args.target, split=args.split,
                              seed=args.seed, device=args.device, threads=args.threads, hoyle=args.hoyle,
                              manga=args.manga, stripe82=args.stripe82, radius_arcsec=args.match_radius,
                              augment=args.augment, engine=args.engine)
    print(json.dumps({k: {m: metrics[k][m] for m in ("n", "accuracy", "roc_auc") if m in metrics[k]}
                      for k in ("all", "size_matched") if k in metrics}))
