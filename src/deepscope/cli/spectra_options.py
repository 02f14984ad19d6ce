"""Options shared by the spectra commands that run an autoencoder (embed, denoise, compress, outliers).

Not a command itself: :mod:`deepscope.cli.main` lists the commands. Kept
light (no torch) so that ``--help`` stays fast.
"""

from deepscope.cli.options import add_device_arg, add_threads_arg

# The networks `spectra train --arch` and `crossval --models` accept, written
# out so that --help imports no torch; a test checks them against
# deepscope.registry.list_models("spectra", trainable=True).
TRAINABLE_NETWORKS = ("spectra_ae_classifier", "spectra_ann", "spectra_cnn")


def add_autoencoder_args(parser):
    """Add ``--model NAME_OR_PATH`` (an autoencoder; required), ``--device`` and ``--threads``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                        help="autoencoder: a 'spectra pretrain' run directory or .pt checkpoint, or the run "
                             "directory of a classifier trained with --arch spectra_ae_classifier "
                             "(required: no autoencoder ships)")
    add_device_arg(parser)
    add_threads_arg(parser)


def add_training_threads_arg(parser, default):
    """Add ``--threads N`` for a command that trains (0 = all cores, as everywhere).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    default : int
        The domain's training default.
    """
    parser.add_argument("--threads", type=int, default=default, metavar="N",
                        help=f"torch CPU threads (default {default}: these small networks train fastest on one "
                             "thread of a shared machine; 0: all cores)")


def describe_option(parser, flag, text):
    """Replace the help of an option that a shared helper added, for this command's defaults.

    ``deepscope.cli.train_options.add_train_args`` writes generic help; the
    spectra commands state their own valid networks and thread default.
    """
    # argparse keeps no public way to edit an action's help after it is added.
    parser._option_string_actions[flag].help = text
