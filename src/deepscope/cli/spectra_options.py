"""Options shared by the spectra commands that run an autoencoder (embed, denoise, compress, outliers).

Not a command itself: :mod:`deepscope.cli.main` lists the commands. Kept
light (no torch) so that ``--help`` stays fast.
"""

from deepscope.cli.options import add_device_arg, add_threads_arg

# Why spectra train on one thread by default (measured; see spectra.train.DEFAULT_CONFIG).
TRAINING_THREADS_WHY = "these small networks train fastest on one thread of a shared machine"


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


def report_result(result):
    """Print an autoencoder command's figures as one JSON line; its unreadable files fail the run afterwards.

    Parameters
    ----------
    result : dict
        As returned by :mod:`deepscope.spectra.autoencoder`, with ``failures``.

    Raises
    ------
    BatchError
        If any input could not be read (the figures are printed first).
    """
    import json

    from deepscope.errors import BatchError

    failures = result.pop("failures")
    print(json.dumps(result))
    if failures:
        raise BatchError(failures)
