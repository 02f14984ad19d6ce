"""Train a galaxy classifier (bars by default) on a labels CSV.

The CSV has a `file` column (paths relative to the CSV) and the target column
(`barred` 0/1 by default). Rows with split == test are never used; a
stratified share of the rest validates (early stopping, and the decision
threshold that `galaxy predict` applies: the one with the best balanced
accuracy on it).

--hoyle and --stripe82 take the same independent bar catalogues as `galaxy
evaluate`, matched on the sky to the training rows only: bars drawn by >= 3
volunteers (Hoyle et al. 2011) weigh --confirmed-weight; barred galaxies
Hoyle's volunteers saw (same sky, as large) but drew no bar in weigh
--doubtful-weight; Stripe 82 co-add bar fractions (Willett et al. 2013)
with >= 5 votes become soft targets and galaxies voted edge-on are left out.
Validation keeps the catalogue labels.

examples:
  deepscope galaxy train --data ../shared/data/galaxy/sdss_gz2_bars/labels.csv --out runs/bars
  deepscope galaxy train --data ../shared/data/galaxy/sdss_gz2_bars/labels.csv --out runs/bars_fast \\
      --arch barnet_fast --hoyle ../shared/data/galaxy/external_bar_labels/hoyle2011_bar_lengths.csv \\
      --stripe82 ../shared/data/galaxy/external_bar_labels/willett2013_table5_stripe82.csv.gz
  deepscope galaxy train --data ../shared/data/galaxy/sdss_gz_ellip_spiral/labels.csv \\
      --target morphology --out runs/morphology
"""


def add_args(parser):
    from deepscope.cli.train_options import add_train_args
    from deepscope.galaxy.train import DEFAULT_CONFIG, DEFAULT_INPUT_SIZE
    from deepscope.galaxy.training_evidence import TrainingEvidence

    parser.add_argument("--data", required=True, metavar="LABELS_CSV",
                        help="labels table: file + target column (required)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (required)")
    parser.add_argument("--target", default="barred", help="label column (default barred; e.g. morphology)")
    parser.add_argument("--input-size", type=int, default=DEFAULT_INPUT_SIZE,
                        help=f"network input side in pixels (default {DEFAULT_INPUT_SIZE})")
    add_train_args(parser, DEFAULT_CONFIG)
    defaults = TrainingEvidence()
    evidence = parser.add_argument_group("independent bar evidence (0/1 bar targets; training rows only)")
    evidence.add_argument("--hoyle", metavar="TABLE",
                          help="Hoyle et al. (2011) drawn-bar catalogue: confirmed and doubtful bars (default: none)")
    evidence.add_argument("--stripe82", metavar="TABLE",
                          help="Willett et al. (2013) Table 5 Stripe 82 votes: soft targets, edge-on left out "
                               "(default: none)")
    evidence.add_argument("--confirmed-weight", type=float, default=defaults.confirmed_weight, metavar="W",
                          help=f"loss weight of a bar Hoyle volunteers drew (default {defaults.confirmed_weight})")
    evidence.add_argument("--doubtful-weight", type=float, default=defaults.doubtful_weight, metavar="W",
                          help="loss weight of a barred galaxy Hoyle covered but drew no bar in "
                               f"(default {defaults.doubtful_weight})")
    evidence.add_argument("--match-radius", type=float, default=defaults.radius_arcsec, metavar="ARCSEC",
                          help=f"sky cross-match radius for these catalogues (default {defaults.radius_arcsec:g})")
    distil = parser.add_argument_group("a trained network as teacher (distillation)")
    distil.add_argument("--teacher", metavar="MODEL",
                        help="a trained galaxy network (shipped name, run directory or .pt) with the same classes: "
                             "its probabilities on the training rows join the targets (default: none)")
    distil.add_argument("--teacher-weight", type=float, default=0.5, metavar="W",
                        help="the teacher's share of each target, 0-1 (default 0.5)")


def main(args):
    import json

    from deepscope.cli.options import refuse_unknown_arch

    # First, before any data is read: a wrong --arch fails in a second, with the valid names.
    refuse_unknown_arch(args.arch, "galaxy")

    from deepscope.cli.train_options import config_from_args, is_primary_process
    from deepscope.galaxy.train import DEFAULT_CONFIG, train_galaxy
    from deepscope.galaxy.training_evidence import TrainingEvidence

    primary = is_primary_process()
    config = config_from_args(args, DEFAULT_CONFIG)
    evidence = TrainingEvidence(hoyle=args.hoyle, stripe82=args.stripe82, confirmed_weight=args.confirmed_weight,
                                doubtful_weight=args.doubtful_weight, radius_arcsec=args.match_radius)
    summary = train_galaxy(args.data, args.out, target=args.target, config=config, input_size=args.input_size,
                           resume=args.resume, progress=primary, evidence=evidence, teacher=args.teacher,
                           teacher_weight=args.teacher_weight)
    if primary:
        keys = ("best_val_score", "best_epoch", "threshold", "n_train", "n_val")
        if evidence.given:
            keys += ("evidence",)
        print(json.dumps({k: summary[k] for k in keys}))
