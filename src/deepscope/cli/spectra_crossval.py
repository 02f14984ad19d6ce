"""Leave-one-library-out evaluation: each library held out in turn.

For every library (folder of a LABELS_CSV) with at least --min-stars usable
types, each model trains on the other libraries and is scored on the held-out
one, beside the template-matching baseline on the same split. Writes
DIR/loo.csv and DIR/report.html.

example:
  deepscope spectra crossval --data ../shared/data/spectra/*/labels.csv \\
      --pool ../shared/data/spectra/stelib --out loo --epochs 30
"""


def add_args(parser):
    from deepscope.spectra.ensemble import DEFAULT_MEMBERS

    parser.add_argument("--data", required=True, nargs="+", metavar="LABELS_CSV", help="labels tables")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--models", nargs="+", default=["spectra_ann", "spectra_cnn", "spectra_ae_classifier"],
                        help="registered classifiers to compare")
    parser.add_argument("--min-stars", type=int, default=50, help="least usable types to hold a library out")
    parser.add_argument("--pool", nargs="*", default=[], metavar="DIR", help="unlabelled spectra for pretraining")
    # The default is the training default, so the table measures the recipe that is shipped.
    parser.add_argument("--epochs", type=int, help="maximum epochs per model (default: as spectra train, 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS,
                        help=f"networks per model, averaged, as spectra train (default {DEFAULT_MEMBERS})")


def main(args):
    import dataclasses

    from deepscope.spectra.task import DEFAULT_CONFIG
    from deepscope.spectra.workflow import crossval_spectra

    config = dataclasses.replace(DEFAULT_CONFIG, epochs=args.epochs or DEFAULT_CONFIG.epochs, seed=args.seed)
    table = crossval_spectra(args.data, args.out, args.models, config, min_stars=args.min_stars,
                             pool_dirs=args.pool, members=args.members)
    print(table.round(3).to_string(index=False))
