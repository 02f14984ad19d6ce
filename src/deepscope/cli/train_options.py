"""Training options shared by every ``<domain> train`` command."""

import logging

from deepscope.cli.options import DEVICE_HELP, TRAINABLE_NETWORKS, threads_help
from deepscope.config import resolve_config


def is_primary_process():
    """Whether this process logs and prints; quiets the other torchrun ranks.

    Under ``torchrun`` every rank runs the whole command; only rank 0 should
    report, so the others keep warnings and errors only.

    Returns
    -------
    bool
    """
    from deepscope.core.distributed import process_info

    primary = process_info().is_primary
    if not primary:
        logging.getLogger("deepscope").setLevel(logging.WARNING)
    return primary


def add_train_args(parser, defaults, threads_why="", resume=True):
    """Add the common training options, showing the domain's defaults.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    defaults : deepscope.config.TrainConfig
    threads_why : str
        Why the domain's thread default is what it is, when it is not 0.
    resume : bool
        Offer ``--resume``, which continues a run whose settings differ; a rerun
        with the same settings resumes without it (a domain whose runs take
        minutes may leave it out).
    """
    # Options default to None so that a --config YAML applies where the command line is silent.
    networks = next((names for names in TRAINABLE_NETWORKS.values() if defaults.model in names), (defaults.model,))
    group = parser.add_argument_group("training")
    group.add_argument("--arch", metavar="NETWORK",
                       help=f"network to train: {', '.join(networks)} (default {defaults.model})")
    group.add_argument("--config", metavar="YAML",
                       help="YAML file of training settings, overridden by options (default: none)")
    group.add_argument("--epochs", type=int, help=f"maximum epochs (default {defaults.epochs})")
    group.add_argument("--batch-size", type=int, help=f"batch size per process (default {defaults.batch_size})")
    group.add_argument("--lr", type=float, help=f"learning rate (default {defaults.lr})")
    group.add_argument("--patience", type=int, help=f"early-stopping patience in epochs (default {defaults.patience})")
    group.add_argument("--val-fraction", type=float, help=f"validation share (default {defaults.val_fraction})")
    group.add_argument("--seed", type=int, help=f"random seed (default {defaults.seed})")
    group.add_argument("--device", metavar="DEVICE", help=DEVICE_HELP)
    group.add_argument("--threads", type=int, metavar="N", help=threads_help(defaults.threads, threads_why))
    group.add_argument("--num-workers", type=int, help="data-loader worker processes (default 0)")
    if resume:
        group.add_argument("--resume", action="store_true",
                           help="continue the run in RUN_DIR even if its settings differ from these (same network); "
                                "a rerun with the same settings resumes without it (default: resume only a run "
                                "with the same settings, refuse one with others)")


def config_from_args(args, defaults):
    """Resolve defaults < --config YAML < command-line options.

    Parameters
    ----------
    args : argparse.Namespace
    defaults : deepscope.config.TrainConfig

    Returns
    -------
    deepscope.config.TrainConfig

    Raises
    ------
    InputError
        If the device is unknown, or CUDA is asked for and absent.
    """
    from deepscope.core.distributed import select_device

    config = resolve_config(
        defaults, args.config, model=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        patience=args.patience, val_fraction=args.val_fraction, seed=args.seed, device=args.device,
        threads=args.threads, num_workers=args.num_workers,
    )
    # Here, before any data is read or the run directory made: the trainer itself would
    # only find out once config.yaml was written.
    select_device(config.device)
    return config
