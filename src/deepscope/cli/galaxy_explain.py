"""Show what a galaxy network looks at in one cutout: feature maps (--layers) or an occlusion map (--occlusion).

--layers writes DIR/input.png, one DIR/<NN>_<layer>.png grid per
convolutional layer (up to --max-channels maps each; <layer> is the module
path, e.g. 01_1_0.png) and DIR/report.html showing them in order, each
titled with its place, kernel and channels (e.g. "conv1 (3x3 stride 2, 16
ch)"); it prints the report's path and how many maps it holds.

--occlusion slides a blurring patch (--patch, --stride) over the cutout: the
patch shows a blurred copy of the image (same light, no bar), so a network
that looks at the bar loses confidence when the patch covers it. It writes a
PNG with the cutout, the heat map and their overlay, and prints the cutout's
path and its unoccluded probability (p_bar for the bar model).

examples:
  deepscope galaxy explain ../shared/data/galaxy/sdss_gz2_bars/images/J000726.72-004221.6.jpeg --layers --out layers
  deepscope galaxy explain ../shared/data/galaxy/sdss_gz2_bars/images/J000726.72-004221.6.jpeg --occlusion --out occ.png
"""

from deepscope.cli.options import add_device_arg, add_engine_arg, add_model_arg, add_threads_arg

DEFAULTS = {"max_channels": 32, "patch": 12, "stride": 4}


def add_explain_args(parser, mode=None):
    """The options of ``galaxy explain``; with a ``mode``, those of its deprecated alias (no mode flags)."""
    parser.add_argument("image", metavar="IMAGE", help="cutout (JPEG, PNG or FITS)")
    if mode is None:
        modes = parser.add_mutually_exclusive_group(required=True)
        modes.add_argument("--layers", action="store_const", const="layers", dest="mode",
                           help="feature maps of every convolutional layer, into --out DIR (required: this or --occlusion)")
        modes.add_argument("--occlusion", action="store_const", const="occlusion", dest="mode",
                           help="occlusion map, into --out PNG (required: this or --layers)")
    out = {"layers": "output directory (required)", "occlusion": "output PNG (required)"}
    parser.add_argument("--out", required=True, metavar={"layers": "DIR", "occlusion": "PNG"}.get(mode, "OUT"),
                        help=out.get(mode, "output directory with --layers, PNG with --occlusion (required)"))
    add_model_arg(parser, "galaxy")
    which = "" if mode else "--{}: "
    if mode in (None, "layers"):
        parser.add_argument("--max-channels", type=int, default=DEFAULTS["max_channels"],
                            help=f"{which.format('layers')}feature maps per layer (default {DEFAULTS['max_channels']})")
    if mode in (None, "occlusion"):
        parser.add_argument("--patch", type=int, default=DEFAULTS["patch"],
                            help=f"{which.format('occlusion')}patch side in model pixels (default {DEFAULTS['patch']})")
        parser.add_argument("--stride", type=int, default=DEFAULTS["stride"],
                            help=f"{which.format('occlusion')}patch step in pixels (default {DEFAULTS['stride']})")
    add_device_arg(parser)
    add_engine_arg(parser)
    add_threads_arg(parser)
    if mode is not None:
        parser.set_defaults(mode=mode)


def add_args(parser):
    add_explain_args(parser)


def main(args):
    from pathlib import Path

    from deepscope.galaxy.explain import write_layer_maps, write_occlusion_png

    network = {"model": args.model, "device": args.device, "threads": args.threads, "engine": args.engine}
    if args.mode == "layers":
        paths = write_layer_maps(args.image, args.out, max_channels=args.max_channels, **network)
        print(f"{Path(args.out) / 'report.html'}: the input and {len(paths) - 1} layers' feature maps")
    else:
        p_base = write_occlusion_png(args.image, args.out, patch=args.patch, stride=args.stride, **network)
        print(f"{args.image}\tp={p_base:.4f}")
