"""Measure the autoencoder's denoising: SNR before and after, on spectra with added noise.

White noise at --snr (continuum units) is added to each spectrum on the model
grid; OUT lists each spectrum's rms error before and after, and the median
SNR gain is printed.

example:
  deepscope spectra denoise ../shared/data/spectra/miles --model runs/spectra_ae --snr 10 --out denoise.csv
"""

from deepscope.cli.spectra_options import add_autoencoder_args, report_result


def add_args(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="spectrum files or directories")
    add_autoencoder_args(parser)
    parser.add_argument("--out", required=True, metavar="TABLE",
                        help="per-spectrum table (.csv or .parquet) (required)")
    parser.add_argument("--snr", type=float, default=10.0, help="signal-to-noise of the added noise (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")


def main(args):
    from deepscope.spectra.autoencoder import denoise

    result = denoise(args.inputs, args.out, args.model, args.snr, args.seed, device=args.device,
                     threads=args.threads)
    report_result(result)
