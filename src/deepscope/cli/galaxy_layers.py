"""Save the feature maps of every convolutional layer for one cutout as PNGs.

Writes DIR/input.png, one DIR/<NN>_<layer>.png grid per convolutional layer
(up to --max-channels maps each) and DIR/report.html showing them in order.

example:
  deepscope galaxy layers ../shared/data/galaxy/sdss_gz2_bars/images/J000726.72-004221.6.jpeg --out layers
"""


def add_args(parser):
    parser.add_argument("image", metavar="IMAGE", help="cutout (JPEG, PNG or FITS)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--model", metavar="NAME_OR_RUN_DIR", help="model (default: the shipped bar model)")
    parser.add_argument("--max-channels", type=int, default=32, help="feature maps per layer (default 32)")


def main(args):
    from deepscope.galaxy.figures import write_layer_maps

    write_layer_maps(args.image, args.out, model=args.model, max_channels=args.max_channels)
