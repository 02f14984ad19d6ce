"""Train a spectral autoencoder on unlabelled spectra (labels, if any, ignored).

The autoencoder is what `embed`, `denoise`, `compress` and `outliers` use; a
classifier trained with `train --arch spectra_ae_classifier` also keeps its
own in RUN_DIR/pretrain, which those commands accept too.

example:
  deepscope spectra pretrain ../shared/data/spectra/stelib ../shared/data/spectra/miles \\
      --out runs/spectra_ae --epochs 30
"""


def add_args(parser):
    from deepscope.cli.options import add_device_arg
    from deepscope.cli.options import add_threads_arg
    from deepscope.cli.spectra_options import TRAINING_THREADS_WHY
    from deepscope.spectra.train import DEFAULT_CONFIG

    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="spectrum files or directories")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write (required)")
    parser.add_argument("--epochs", type=int, default=40, help="maximum epochs (default 40)")
    parser.add_argument("--latent", type=int, default=16, help="code length (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_device_arg(parser)
    add_threads_arg(parser, DEFAULT_CONFIG.threads, TRAINING_THREADS_WHY)


def main(args):
    import dataclasses
    import json

    from deepscope.spectra.autoencoder import train_autoencoder
    from deepscope.spectra.train import DEFAULT_CONFIG

    config = dataclasses.replace(DEFAULT_CONFIG, epochs=args.epochs, seed=args.seed, device=args.device,
                                 threads=args.threads, model_kwargs={"latent": args.latent})
    print(json.dumps(train_autoencoder(args.inputs, args.out, config)))
