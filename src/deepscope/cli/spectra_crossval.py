"""Leave-one-library-out evaluation: each library held out in turn.

For every library (folder of a LABELS_CSV) with at least --min-stars usable
types, each model trains on the other libraries and is scored on the held-out
one, beside the template-matching baseline on the same split. Writes
DIR/loo.csv, DIR/report.html and a run directory per model and held-out
library (DIR/runs/LIBRARY/MODEL). Rerunning the same command keeps every
finished run (it is only scored again) and resumes the one it stopped in;
other settings into the same DIR are refused.

example:
  deepscope spectra crossval --data ../shared/data/spectra/*/labels.csv \\
      --pool ../shared/data/spectra/stelib --out loo --epochs 30
"""


DEFAULT_MODELS = ("spectra_ann", "spectra_cnn", "spectra_ae_classifier")


def add_args(parser):
    from deepscope.cli.options import add_device_arg
    from deepscope.cli.options import TRAINABLE_NETWORKS, add_threads_arg
    from deepscope.cli.spectra_train import TRAINING_THREADS_WHY
    from deepscope.spectra.train import DEFAULT_CONFIG, DEFAULT_MEMBERS

    parser.add_argument("--data", required=True, nargs="+", metavar="LABELS_CSV",
                        help="labels tables with file and sptype columns, one per library (required)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (required)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NETWORK",
                        help=f"networks to compare, of {', '.join(TRAINABLE_NETWORKS['spectra'])} (default: all three)")
    parser.add_argument("--min-stars", type=int, default=50,
                        help="least usable types to hold a library out (default 50)")
    parser.add_argument("--pool", nargs="*", default=[], metavar="DIR",
                        help="unlabelled spectra for pretraining (default: none)")
    # The default is the training default, so the table measures the recipe that is shipped.
    parser.add_argument("--epochs", type=int,
                        help=f"maximum epochs per model (default: as spectra train, {DEFAULT_CONFIG.epochs})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS,
                        help=f"networks per model, averaged, as spectra train (default {DEFAULT_MEMBERS})")
    add_device_arg(parser)
    add_threads_arg(parser, DEFAULT_CONFIG.threads, TRAINING_THREADS_WHY)


def main(args):
    from deepscope.cli.options import refuse_unknown_arch

    # Before anything is read or trained: a wrong name must not cost the first library's runs.
    for name in args.models:
        refuse_unknown_arch(name, "spectra")

    import dataclasses

    from deepscope.spectra.evaluate import crossval_spectra
    from deepscope.spectra.train import DEFAULT_CONFIG

    config = dataclasses.replace(DEFAULT_CONFIG, epochs=args.epochs or DEFAULT_CONFIG.epochs, seed=args.seed,
                                 device=args.device, threads=args.threads)
    table = crossval_spectra(args.data, args.out, args.models, config, min_stars=args.min_stars,
                             pool_dirs=args.pool, members=args.members)
    print(table.round(3).to_string(index=False))
