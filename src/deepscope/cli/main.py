"""The ``deepscope`` command: sub-commands per domain, listed explicitly.

Each command lives in its own module of this package, whose docstring is its
help text and which defines ``add_args(parser)`` and ``main(args)``. Command
modules import torch and the libraries only inside ``main``, so
``deepscope --help`` stays fast.
"""

import argparse
import contextlib
import importlib
import logging
import signal
import sys

from deepscope import __version__
from deepscope.core.progress import silence_progress_bars
from deepscope.errors import DeepscopeError, first_line

# Written out rather than discovered, so the command list is easy to read.
COMMANDS = {
    "galaxy": {
        "select": "galaxy_select",
        "cutout": "galaxy_cutout",
        "crossmatch": "galaxy_crossmatch",
        "train": "galaxy_train",
        "predict": "galaxy_predict",
        "evaluate": "galaxy_evaluate",
        "explain": "galaxy_explain",
        "layers": "galaxy_layers",  # deprecated alias of explain --layers
        "occlusion": "galaxy_occlusion",  # deprecated alias of explain --occlusion
    },
    "spectra": {
        "train": "spectra_train",
        "predict": "spectra_predict",
        "evaluate": "spectra_evaluate",
        "crossval": "spectra_crossval",
        "autoencoder": "spectra_autoencoder",
        "pretrain": "spectra_pretrain",  # deprecated alias of autoencoder pretrain
        "embed": "spectra_embed",  # deprecated alias of autoencoder embed
        "denoise": "spectra_denoise",  # deprecated alias of autoencoder denoise
        "compress": "spectra_compress",  # deprecated alias of autoencoder compress
        "outliers": "spectra_outliers",  # deprecated alias of autoencoder outliers
    },
    "cryoem": {
        "simulate": "cryoem_simulate",
        "convert": "cryoem_convert",
        "train": "cryoem_train",
        "pick": "cryoem_pick",
        "evaluate": "cryoem_evaluate",
        "extract": "cryoem_extract",
        "classify": "cryoem_classify",
        "selftrain": "cryoem_selftrain",
    },
}
TOP_LEVEL = {"demo": "demo", "models": "models", "doctor": "doctor"}
# Commands that keep their finished batch parts when stopped, so that a rerun resumes.
RESUMING_BATCHES = {"galaxy_predict", "spectra_predict", "cryoem_pick"}
DESCRIPTION = """\
deepscope: deep learning for telescope and microscope data.

Three pipelines share one core: galaxy bars in SDSS colour cutouts (galaxy),
MK classification of stellar spectra (spectra) and cryo-EM particle picking
(cryoem). Trained models ship inside the package, so every command predicts
offline right after install.

examples:
  deepscope demo --out demo_out
  deepscope models
  deepscope galaxy predict --help
"""
DOMAIN_HELP = {
    "galaxy": "galaxy bar detection in SDSS colour cutouts",
    "spectra": "MK classification of stellar spectra",
    "cryoem": "cryo-EM particle picking and 2D classification",
}


def _logging_options(suppress):
    """A parent parser with -v/-q, so they are accepted before or after any command.

    On sub-commands the defaults are suppressed, so a flag given earlier on
    the line is not reset by a sub-command that does not repeat it.
    """
    parent = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else False
    parent.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging on stderr")
    parent.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="warnings and errors only, no progress bars")
    return parent


def _add_command(subparsers, name, module_name, logging_options):
    module = importlib.import_module(f"deepscope.cli.{module_name}")
    doc = module.__doc__ or ""
    parser = subparsers.add_parser(
        name, help=doc.strip().splitlines()[0] if doc else None, description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter, parents=[logging_options],
    )
    module.add_args(parser)
    # _parser: the parser whose usage an error shows (this command's, not the top level's)
    parser.set_defaults(_command=module, _parser=parser)


def build_parser():
    """The full argument parser of ``deepscope``.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="deepscope", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_logging_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"deepscope {__version__}")
    logging_options = _logging_options(suppress=True)
    top = parser.add_subparsers(title="commands", metavar="COMMAND")
    for domain, commands in COMMANDS.items():
        domain_parser = top.add_parser(domain, help=DOMAIN_HELP[domain], description=DOMAIN_HELP[domain],
                                       parents=[logging_options])
        sub = domain_parser.add_subparsers(title=f"{domain} commands", metavar="COMMAND")
        domain_parser.set_defaults(_parser=domain_parser)
        for name, module_name in commands.items():
            _add_command(sub, name, module_name, logging_options)
    for name, module_name in TOP_LEVEL.items():
        _add_command(top, name, module_name, logging_options)
    return parser


def main(argv=None):
    """Run ``deepscope``; returns the exit status.

    Errors that users can cause print one line (``deepscope: error: ...``)
    on stderr and exit 1, without a traceback; so does any ``OSError``
    (a full disk, a vanished directory), naming its path. A batch with bad
    inputs (:class:`~deepscope.errors.BatchError`) lists one line per bad
    file. Ctrl-C (exit 130) and SIGTERM (exit 143) stop with one line that
    says what a rerun of that command does (:func:`rerun_hint`); every
    output lock is released. An option the command does not take is
    reported with that command's usage.
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr,
    )
    silence_progress_bars(args.quiet)  # per call: main() also runs in-process, from tests and scripts
    command = getattr(args, "_command", None)
    if command is None:
        getattr(args, "_parser", parser).print_help(sys.stderr)
        return 2
    from deepscope.core.lock import release_all

    with _sigterm_as_interrupt() as terminated:
        try:
            _check_device(args)
            command.main(args)
            _leave_process_group_together()
        except DeepscopeError as exc:
            print(f"deepscope: error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"deepscope: error: {where}{exc.strerror or first_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"deepscope: {'terminated' if terminated else 'interrupted'}; {rerun_hint(command)}",
                  file=sys.stderr)
            return 128 + signal.SIGTERM if terminated else 130
        finally:
            release_all()
            trainer = sys.modules.get("deepscope.core.trainer")
            if trainer is not None:
                trainer.forget_progress()
    return 0


def rerun_hint(command) -> str:
    """What rerunning ``command`` (a command module) does after it was stopped.

    A training run says where it stands (:func:`deepscope.core.trainer.rerun_hint`);
    a batch command keeps its finished parts; any other command starts again.

    Examples
    --------
    >>> from deepscope.cli import galaxy_predict, galaxy_evaluate
    >>> rerun_hint(galaxy_predict)
    'finished parts are kept; rerun the same command to resume'
    >>> rerun_hint(galaxy_evaluate)
    'rerun the same command to start again'
    """
    # Looked up, not imported: a command that never imported the trainer started no training run.
    trainer = sys.modules.get("deepscope.core.trainer")
    hint = trainer.rerun_hint() if trainer is not None else None
    if hint:
        return hint
    if command.__name__.rsplit(".", 1)[-1] in RESUMING_BATCHES:
        return "finished parts are kept; rerun the same command to resume"
    return "rerun the same command to start again"


def _check_device(args):
    """Refuse a --device this machine lacks before the command reads or writes anything.

    Commands otherwise met it when loading their network, after some had made
    their --out directory. CPU needs no check (and no torch import here).
    """
    device = getattr(args, "device", None)
    if device and device != "cpu":
        from deepscope.core.distributed import select_device

        select_device(device)


def _leave_process_group_together():
    """Under torchrun, wait for every rank, then leave the process group, before exiting.

    A rank that finished first used to tear its gloo connections down at
    exit (``atexit``) while rank 0 was still writing checkpoints and
    reporting; the half-closed connections then aborted a rank (SIGABRT)
    after training had succeeded. Leaving together, on the success path
    only (a failed rank must not wait for peers in another collective),
    makes the exit orderly. No-op outside torchrun.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return
    dist.barrier()
    dist.destroy_process_group()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM (a scheduler's or ``kill``'s stop) into KeyboardInterrupt for the duration.

    Yields a list that is non-empty once SIGTERM arrived, so the caller can
    tell it from Ctrl-C. Outside the main thread (signals cannot be handled
    there) nothing changes.
    """
    terminated = []

    def interrupt(signum, frame):
        terminated.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        yield terminated
        return
    try:
        yield terminated
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
