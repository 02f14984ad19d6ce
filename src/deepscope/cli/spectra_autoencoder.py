"""A spectral autoencoder: pretrain one, or embed, denoise, compress or rank outliers with it.

One command with a mode (`deepscope spectra autoencoder MODE --help` shows
its options). `pretrain` trains an autoencoder on unlabelled spectra; the
other modes take --model: a `pretrain` run directory or .pt file, or the run
directory of a classifier trained with `--arch spectra_ae_classifier` (its
RUN_DIR/pretrain). Each prints its figures as one JSON line; unreadable
inputs are listed after them, and the exit status is 1.

example:
  deepscope spectra autoencoder outliers ../shared/data/spectra/stelib --model runs/spectra_ae --inject 9 --out odd.csv
"""

import argparse

from deepscope.cli.options import add_device_arg, add_threads_arg

# Each mode's help: its first line, then what it does and an example.
MODE_HELP = {
    "pretrain": """Train a spectral autoencoder on unlabelled spectra (labels, if any, ignored).

example:
  deepscope spectra autoencoder pretrain ../shared/data/spectra/stelib ../shared/data/spectra/miles \\
      --out runs/spectra_ae --epochs 30
""",
    "embed": """Map spectra to 2-D with the autoencoder's code, coloured by main class (PNG).

Prints how often a labelled spectrum's 5 nearest neighbours on the map share
its main class (5-fold cross-validated), beside chance.

example:
  deepscope spectra autoencoder embed ../shared/data/spectra/stelib \\
      --labels ../shared/data/spectra/miles/labels.csv --model runs/spectra_ae --out map.png
""",
    "denoise": """Measure the autoencoder's denoising: SNR before and after, on spectra with added noise.

White noise at --snr (continuum units) is added to each spectrum on the grid;
OUT lists each one's rms error before and after; the median SNR gain is printed.

example:
  deepscope spectra autoencoder denoise ../shared/data/spectra/miles --model runs/spectra_ae --snr 10 --out d.csv
""",
    "compress": """Store spectra as autoencoder codes; prints compression ratio and reconstruction error.

example:
  deepscope spectra autoencoder compress ../shared/data/spectra/miles --model runs/spectra_ae --out codes.parquet
""",
    "outliers": """Rank spectra by autoencoder reconstruction error, most unusual first.

--inject N adds N oddities (wavelength-reversed, noise-only and emission-line
spectra made from the inputs) and prints how many rank in the top N.

example:
  deepscope spectra autoencoder outliers ../shared/data/spectra/stelib --model runs/spectra_ae --inject 9 --out odd.csv
""",
}


def _inputs(parser, nargs="+", what="spectrum files or directories"):
    parser.add_argument("inputs", nargs=nargs, metavar="INPUT", help=what)


def _model_device_threads(parser):
    parser.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                        help="autoencoder: a 'spectra autoencoder pretrain' run directory or .pt checkpoint, or the "
                             "run directory of a classifier trained with --arch spectra_ae_classifier "
                             "(required: no autoencoder ships)")
    add_device_arg(parser)
    add_threads_arg(parser)


def _pretrain_args(parser):
    from deepscope.cli.spectra_train import TRAINING_THREADS_WHY
    from deepscope.spectra.train import DEFAULT_CONFIG

    _inputs(parser)
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (required)")
    parser.add_argument("--epochs", type=int, default=40, help="maximum epochs (default 40)")
    parser.add_argument("--latent", type=int, default=16, help="code length (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_device_arg(parser)
    add_threads_arg(parser, DEFAULT_CONFIG.threads, TRAINING_THREADS_WHY)


def _embed_args(parser):
    _inputs(parser, "*", "unlabelled spectrum files or directories")
    parser.add_argument("--labels", nargs="*", default=[], metavar="LABELS_CSV",
                        help="labelled spectra, coloured by main class (default: none)")
    _model_device_threads(parser)
    parser.add_argument("--out", required=True, metavar="MAP.png", help="output image (required)")


def _denoise_args(parser):
    _inputs(parser)
    _model_device_threads(parser)
    parser.add_argument("--out", required=True, metavar="TABLE",
                        help="per-spectrum table (.csv or .parquet) (required)")
    parser.add_argument("--snr", type=float, default=10.0, help="signal-to-noise of the added noise (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")


def _compress_args(parser):
    _inputs(parser)
    _model_device_threads(parser)
    parser.add_argument("--out", required=True, metavar="CODES", help="codes table (.csv or .parquet) (required)")


def _outliers_args(parser):
    _inputs(parser)
    _model_device_threads(parser)
    parser.add_argument("--out", required=True, metavar="TABLE", help="ranked table (.csv or .parquet) (required)")
    parser.add_argument("--inject", type=int, default=0, help="oddities to inject (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the oddities (default 0)")


def _run(mode, args):
    """Run one mode with the parsed arguments; print its figures as one JSON line."""
    import dataclasses
    import json

    from deepscope.errors import BatchError, InputError
    from deepscope.spectra import autoencoder

    if mode == "pretrain":
        from deepscope.spectra.train import DEFAULT_CONFIG

        config = dataclasses.replace(DEFAULT_CONFIG, epochs=args.epochs, seed=args.seed, device=args.device,
                                     threads=args.threads, model_kwargs={"latent": args.latent})
        print(json.dumps(autoencoder.train_autoencoder(args.inputs, args.out, config)))
        return
    where = {"device": args.device, "threads": args.threads}
    if mode == "embed":
        if not args.inputs and not args.labels:
            msg = "give spectra (INPUT) or --labels tables to embed"
            raise InputError(msg)
        result = autoencoder.embed(args.inputs, args.out, args.model, args.labels, **where)
    elif mode == "denoise":
        result = autoencoder.denoise(args.inputs, args.out, args.model, args.snr, args.seed, **where)
    elif mode == "compress":
        result = autoencoder.compress(args.inputs, args.out, args.model, **where)
    else:
        result = autoencoder.outliers(args.inputs, args.out, args.model, args.inject, args.seed, **where)
    failures = result.pop("failures")
    print(json.dumps(result))
    if failures:  # the figures of the good inputs first, then the bad ones fail the run
        raise BatchError(failures)


MODE_ARGS = {"pretrain": _pretrain_args, "embed": _embed_args, "denoise": _denoise_args,
             "compress": _compress_args, "outliers": _outliers_args}


def add_args(parser):
    # A copy of the command's own -h/-v/-q, so that they work after the mode too.
    common = argparse.ArgumentParser(add_help=False, parents=[parser])
    modes = parser.add_subparsers(title="modes", metavar="MODE", dest="mode", required=True)
    for mode, add in MODE_ARGS.items():
        add(modes.add_parser(mode, help=MODE_HELP[mode].splitlines()[0], description=MODE_HELP[mode],
                             formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common],
                             add_help=False))


def main(args):
    _run(args.mode, args)


def deprecated_alias(mode):
    """``add_args`` and ``main`` of the old ``spectra MODE`` command: the mode's options, a warning when run."""
    import logging

    def alias_main(args):
        logging.getLogger(__name__).warning("'deepscope spectra %s' is deprecated: use 'deepscope spectra "
                                            "autoencoder %s'", mode, mode)
        _run(mode, args)

    return MODE_ARGS[mode], alias_main
