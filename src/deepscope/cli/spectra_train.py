"""Train an MK spectral classifier on labelled spectral libraries.

Each LABELS_CSV has `file` (paths relative to the table) and `sptype` (the
catalogue's MK string, e.g. `G8III`, `K3Iab:`, `sd:F`); partial types train
the part they know, and strings with no O-M type (`HB`, `L0`) are left out.
Files that cannot be read are skipped and listed in RUN_DIR/skipped.csv.
Every network, and the ensemble they form, gets the temperature of its
`confidence` fitted on the validation split (RUN_DIR/calibration.json gives
the calibration error before and after, RUN_DIR/reliability.png the diagram).
Training copies are the library spectra lightly perturbed, as the shipped
models were trained; `--survey-augment` draws them as surveys deliver spectra
(noise, low resolution, cut ends, calibration tilts, velocity residuals) and
fits the temperature on clean and noisy validation copies (held out, it holds
types better at low S/N but types clean spectra's subclasses worse:
docs/spectra.md).
Rerunning the same command resumes an interrupted run, keeping the networks
it finished (a finished run is left as it is); a RUN_DIR holding a run with
other settings is refused.
`--arch spectra_ae_classifier` first pretrains an autoencoder on every
spectrum (labels ignored) plus `--pool` directories, then fine-tunes.
`--teacher` distils a trained classifier into each network trained here:
`--arch spectra_cnn_small --members 1 --teacher spectra_mk --mixup 0.5` made
the shipped spectra_mk_fast, one small network in place of the ensemble
(docs/spectra.md says what it costs in accuracy).

example:
  deepscope spectra train --data ../shared/data/spectra/mkclass/labels.csv \\
      ../shared/data/spectra/pickles/labels.csv --out runs/spectra --epochs 20
"""


# Why spectra networks train on one thread by default (spectra.train.DEFAULT_CONFIG).
TRAINING_THREADS_WHY = "these small networks train fastest on one thread of a shared machine"


def add_args(parser):
    from deepscope.cli.train_options import add_train_args
    from deepscope.spectra.distil import DEFAULT_TEACHER_WEIGHT
    from deepscope.spectra.train import DEFAULT_CONFIG, DEFAULT_MEMBERS

    parser.add_argument("--data", required=True, nargs="+", metavar="LABELS_CSV",
                        help="labels tables with file and sptype columns (required)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (required)")
    parser.add_argument("--grid", nargs=3, type=float, metavar=("START", "STOP", "N"), default=(3850, 5550, 580),
                        help="wavelength grid in Angstrom, log-uniform (default 3850 5550 580)")
    parser.add_argument("--min-coverage", type=float, default=0.4,
                        help="least fraction of the grid a spectrum must cover (default 0.4)")
    parser.add_argument("--pool", nargs="*", default=[], metavar="DIR",
                        help="unlabelled spectra for autoencoder pretraining, e.g. stelib (default: none)")
    parser.add_argument("--pretrain-epochs", type=int, default=40, help="autoencoder epochs (default 40)")
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS,
                        help=f"networks trained apart (seeds SEED, SEED+1 ...) and averaged "
                             f"(default {DEFAULT_MEMBERS})")
    parser.add_argument("--teacher", metavar="NAME_OR_PATH",
                        help="distil this trained classifier (shipped name, run directory or .pt): each network "
                             "learns its answers on every augmented copy, e.g. one small network from the "
                             "shipped ensemble (default: none, labels only)")
    parser.add_argument("--teacher-weight", type=float, default=DEFAULT_TEACHER_WEIGHT,
                        help=f"the teacher's share of the loss, 0 to 1; the rest comes from the labels "
                             f"(default {DEFAULT_TEACHER_WEIGHT:g})")
    parser.add_argument("--mixup", type=float, default=0.0, metavar="SHARE",
                        help="with --teacher: the share of training copies mixed with another spectrum "
                             "before the teacher answers them, 0 to 1 (default 0; spectra_mk_fast was taught "
                             "with 0.5)")
    parser.add_argument("--survey-augment", action="store_true",
                        help="draw training copies as surveys deliver spectra (noise, low resolution, cut ends, "
                             "tilts, velocity residuals) and calibrate on clean and noisy validation copies "
                             "(default: the library spectra lightly perturbed, calibrated on clean ones)")
    # No --resume: a rerun with the same settings resumes by itself, and a spectra run takes minutes,
    # so one with other settings goes to a new run directory.
    add_train_args(parser, DEFAULT_CONFIG, threads_why=TRAINING_THREADS_WHY, resume=False)


def main(args):
    import json

    from deepscope.cli.options import refuse_unknown_arch

    # Before anything is read: a wrong network must not cost a pass over the data.
    refuse_unknown_arch(args.arch, "spectra")

    from deepscope.cli.train_options import config_from_args, is_primary_process
    from deepscope.errors import InputError
    from deepscope.spectra.augment import SurveyAugment
    from deepscope.spectra.preparation.grid import Grid
    from deepscope.spectra.train import DEFAULT_CONFIG, train_spectra

    start, stop, n = args.grid
    if not 0 < start < stop or n < 16:
        msg = f"--grid {start:g} {stop:g} {n:g}: need 0 < START < STOP and N >= 16"
        raise InputError(msg)
    primary = is_primary_process()
    config = config_from_args(args, DEFAULT_CONFIG)
    summary = train_spectra(args.data, args.out, config, Grid(start, stop, int(n)), args.min_coverage,
                            args.pool, args.pretrain_epochs, progress=primary, members=args.members,
                            teacher=args.teacher, teacher_weight=args.teacher_weight, mixup=args.mixup,
                            augment=SurveyAugment() if args.survey_augment else None)
    if primary:
        print(json.dumps(summary))
