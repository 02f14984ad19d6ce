"""Occlusion map: p_bar as a blurring patch slides over the cutout.

The patch shows a blurred copy of the image (same light, no bar). A network
that looks at the bar loses confidence when the patch covers the bar. Writes
a PNG with the cutout, the heat map and their overlay; prints the cutout's
path and its unoccluded probability (p_bar for the bar model).

example:
  deepscope galaxy occlusion ../shared/data/galaxy/sdss_gz2_bars/images/J000726.72-004221.6.jpeg --out occ.png
"""


from deepscope.cli.options import add_device_arg, add_model_arg, add_threads_arg


def add_args(parser):
    parser.add_argument("image", metavar="IMAGE", help="cutout (JPEG, PNG or FITS)")
    parser.add_argument("--out", required=True, metavar="PNG", help="output PNG (required)")
    add_model_arg(parser, "galaxy")
    parser.add_argument("--patch", type=int, default=12, help="patch side in model pixels (default 12)")
    parser.add_argument("--stride", type=int, default=4, help="patch step in pixels (default 4)")
    add_device_arg(parser)
    add_threads_arg(parser)


def main(args):
    from deepscope.galaxy.figures import write_occlusion_png

    p_base = write_occlusion_png(args.image, args.out, model=args.model, patch=args.patch, stride=args.stride,
                                 device=args.device, threads=args.threads)
    print(f"{args.image}\tp={p_base:.4f}")
