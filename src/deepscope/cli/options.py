"""Options that several commands share, spelled and explained the same everywhere.

Every command that runs a network takes ``--model`` (a shipped name, a run
directory or a ``.pt`` file), ``--device`` and ``--threads``, and those that
can run a shipped network's ONNX export ``--engine``; every command that
reads a frame that may be upside down takes ``--flip-y HEIGHT``; every batch
command takes the input and cluster options of :func:`add_batch_args`. This
module imports nothing heavy (the shipped-model table imports no torch), so
``--help`` stays fast.
"""

import os

from deepscope.core.onnx_engine import ENGINE_VARIABLE, ENGINES
from deepscope.registry import list_weights

# Networks that `<domain> train --arch` accepts, written out because the registry learns them by importing
# each domain's models (and torch); tests check this against the registry.
TRAINABLE_NETWORKS = {
    "galaxy": ("abraham2018", "barnet", "barnet_fast"),
    "spectra": ("spectra_ae_classifier", "spectra_ann", "spectra_cnn", "spectra_cnn_small"),
    "cryoem": ("cryoem_unet", "cryoem_unet_joint", "cryoem_unet_regions"),
}


def refuse_unknown_arch(name, domain):
    """Refuse a ``--arch`` the domain cannot train, before torch is even imported.

    The same check as :func:`deepscope.registry.check_arch`, on the written-out
    :data:`TRAINABLE_NETWORKS`, so a typo costs a fraction of a second.

    Raises
    ------
    deepscope.errors.ModelError

    Examples
    --------
    >>> refuse_unknown_arch("barnet", "galaxy")
    >>> refuse_unknown_arch("barnet", "spectra")
    Traceback (most recent call last):
    ...
    deepscope.errors.ModelError: --arch barnet is not a spectra network; choose from: spectra_ae_classifier, spectra_ann, spectra_cnn, spectra_cnn_small
    """
    from deepscope.errors import ModelError

    valid = TRAINABLE_NETWORKS[domain]
    if name is not None and name not in valid:
        msg = f"--arch {name} is not a {domain} network; choose from: {', '.join(valid)}"
        raise ModelError(msg)


DEVICE_HELP = "cpu, cuda or cuda:N; cuda fails with a clear error where no GPU is found (default cpu)"
ENGINE_HELP = (f"what runs the network: {', '.join(ENGINES)}; auto runs a shipped model's ONNX export on the CPU "
               "(the one 'deepscope models' names) and torch on CUDA or for a checkpoint you trained; onnx is torch's "
               "answers on any CPU, onnx-int8 faster answers that move a little (default auto, or the value of "
               f"{ENGINE_VARIABLE}, a deprecated way to set it)")


def threads_help(default=0, why=""):
    """Help of every ``--threads``: N torch CPU threads, 0 meaning all cores.

    Examples
    --------
    >>> threads_help()
    'torch CPU threads in this process (default 0: all cores)'
    >>> threads_help(1, "small networks train fastest on one thread")
    'torch CPU threads in this process, 0: all cores (default 1: small networks train fastest on one thread)'
    """
    if default == 0:
        return "torch CPU threads in this process (default 0: all cores)"
    return f"torch CPU threads in this process, 0: all cores (default {default}{': ' + why if why else ''})"


def add_model_arg(parser, domain, default_help=None):
    """Add ``--model NAME_OR_PATH`` naming the domain's shipped weights.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    domain : str
    default_help : str, optional
        What happens without ``--model``; by default the domain's default
        shipped model is used.
    """
    names = [w.name for w in sorted(list_weights(domain), key=lambda w: (not w.default, w.name))]
    parser.add_argument(
        "--model", metavar="NAME_OR_PATH",
        help=f"shipped model ({', '.join(names)}), run directory or .pt checkpoint "
             f"(default: {default_help or names[0]}; list them with 'deepscope models')")


def add_device_arg(parser):
    """Add ``--device`` (default cpu)."""
    parser.add_argument("--device", default="cpu", metavar="DEVICE", help=DEVICE_HELP)


def add_engine_arg(parser):
    """Add ``--engine`` (default auto), beside ``--device`` on commands that run a shipped network.

    The library checks the value (:func:`deepscope.core.onnx_engine.check_engine`),
    so a bad one, typed or from the environment, is one line.
    """
    parser.add_argument("--engine", default=os.environ.get(ENGINE_VARIABLE, "").strip().lower() or "auto",
                        metavar="ENGINE", help=ENGINE_HELP)


def add_threads_arg(parser, default=0, why=""):
    """Add ``--threads N`` (0: all cores).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    default : int
        The command's default; 0 unless a measurement says otherwise.
    why : str
        That measurement, for the help text, when the default is not 0.
    """
    parser.add_argument("--threads", type=int, default=default, metavar="N", help=threads_help(default, why))


def add_network_args(parser, domain, threads_default=0, threads_why=""):
    """Add ``--model``, ``--device``, ``--engine`` and ``--threads``: what runs a domain's network, and where.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    domain : str
        See :func:`add_model_arg`.
    threads_default : int
        See :func:`add_threads_arg`.
    threads_why : str
        See :func:`add_threads_arg`.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_network_args(parser, "spectra")
    >>> parser.parse_args(["--device", "cuda:1", "--engine", "torch"])
    Namespace(model=None, device='cuda:1', engine='torch', threads=0)
    """
    add_model_arg(parser, domain)
    add_device_arg(parser)
    add_engine_arg(parser)
    add_threads_arg(parser, threads_default, threads_why)


def add_flip_y_arg(parser, what="coordinates", flag="--flip-y"):
    """Add a ``--flip-y HEIGHT`` option: y -> HEIGHT - 1 - y for a frame stored upside down.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    what : str
        What is flipped, for the help text.
    flag : str
        The option's name, when one command flips two things.
    """
    parser.add_argument(flag, type=int, metavar="HEIGHT",
                        help=f"{what} are upside down in a micrograph HEIGHT pixels tall: y -> HEIGHT-1-y "
                             "(default: not flipped)")


def add_batch_args(parser, noun, partition_size=None, batch_size=None):
    """Add --catalog, --path-column, --read-threads, --workers, --scheduler (and sizes).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    noun : str
        What one input is, plural, for the help text (``"cutouts"``).
    partition_size : int, optional
        Default of ``--partition-size``; the option is left out when None
        (cryo-EM picks one micrograph per partition).
    batch_size : int, optional
        Default of ``--batch-size``; left out when None.
    """
    group = parser.add_argument_group("inputs and scaling out")
    group.add_argument("--catalog", metavar="TABLE", help=f"CSV, Parquet or FITS table listing {noun} (default: none)")
    group.add_argument("--path-column", default="file", help="catalogue column with the paths (default file)")
    if partition_size is not None:
        group.add_argument("--partition-size", type=int, default=partition_size,
                           help=f"{noun} per partition: the unit of resuming and of Dask tasks "
                                f"(default {partition_size})")
    if batch_size is not None:
        group.add_argument("--batch-size", type=int, default=batch_size,
                           help=f"{noun} per forward pass (default {batch_size})")
    group.add_argument("--read-threads", type=int, default=0, metavar="N",
                       help="file-reading processes or threads per process, 0: every core this process may use, "
                            "shared among --workers; 2 per task on a --scheduler's workers (default 0)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="run on a local Dask cluster of N processes (default: in this process)")
    group.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (default: none)")


def usable_cores(workers=None):
    """The cores this process may run on (its CPU affinity), shared among ``workers`` local Dask workers.

    The default of ``--read-threads``: on 2 cores, 2 readers beside the
    network is what was measured fastest; on a GPU machine's many cores,
    decoding is the work, and 2 readers left 14 of 16 cores idle (galaxy
    predict 4,644 cutouts/s on an H200).

    >>> usable_cores() >= 1 and usable_cores(10_000) == 1
    True
    """
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // (workers or 1))


def batch_options_from_args(args):
    """The :class:`~deepscope.core.batch.options.BatchOptions` of a parsed batch command.

    Parameters
    ----------
    args : argparse.Namespace
        From a parser given :func:`add_batch_args`, :func:`add_threads_arg`,
        :func:`add_device_arg` and :func:`add_engine_arg`.

    Returns
    -------
    deepscope.core.batch.options.BatchOptions

    Raises
    ------
    InputError
        If ``--read-threads`` is negative.
    """
    from deepscope.core.batch.options import BatchOptions
    from deepscope.errors import InputError

    if args.read_threads < 0:  # here, where 0 still means every core: BatchOptions.check sees the count
        msg = f"--read-threads must be 0 (every core) or more, got {args.read_threads}"
        raise InputError(msg)
    defaults = BatchOptions()
    return BatchOptions(
        catalog=args.catalog, path_column=args.path_column,
        partition_size=getattr(args, "partition_size", defaults.partition_size),
        batch_size=getattr(args, "batch_size", defaults.batch_size),
        # This machine's cores say nothing of a remote cluster's workers: 2 there, as before.
        read_threads=args.read_threads or (2 if args.scheduler else usable_cores(args.workers)),
        threads=args.threads or None, device=args.device, engine=args.engine, workers=args.workers,
        scheduler=args.scheduler,
    )
