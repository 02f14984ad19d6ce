"""Save the feature maps of every convolutional layer for one cutout as PNGs.

Writes DIR/input.png, one DIR/<NN>_<layer>.png grid per convolutional layer
(up to --max-channels maps each; <layer> is the module path, e.g. 01_1_0.png)
and DIR/report.html showing them in order, each titled with its place, kernel
and channels (e.g. "conv1 (3x3 stride 2, 16 ch)").

example:
  deepscope galaxy layers ../shared/data/galaxy/sdss_gz2_bars/images/J000726.72-004221.6.jpeg --out layers
"""


from deepscope.cli.options import add_device_arg, add_model_arg, add_threads_arg


def add_args(parser):
    parser.add_argument("image", metavar="IMAGE", help="cutout (JPEG, PNG or FITS)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (required)")
    add_model_arg(parser, "galaxy")
    parser.add_argument("--max-channels", type=int, default=32, help="feature maps per layer (default 32)")
    add_device_arg(parser)
    add_threads_arg(parser)


def main(args):
    from deepscope.galaxy.figures import write_layer_maps

    write_layer_maps(args.image, args.out, model=args.model, max_channels=args.max_channels, device=args.device,
                     threads=args.threads)
