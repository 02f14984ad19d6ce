"""Occlusion map: p_bar as a blurring patch slides over the cutout.

The patch shows a blurred copy of the image (same light, no bar). A network
that looks at the bar loses confidence when the patch covers the bar. Writes a PNG with the cutout, the heat map and their overlay.

example:
  deepscope galaxy occlusion ../shared/data/galaxy/sdss_gz2_bars/images/J000726.72-004221.6.jpeg --out occ.png
"""


def add_args(parser):
    parser.add_argument("image", metavar="IMAGE", help="cutout (JPEG, PNG or FITS)")
    parser.add_argument("--out", required=True, metavar="PNG", help="output PNG")
    parser.add_argument("--model", metavar="NAME_OR_RUN_DIR", help="model (default: the shipped bar model)")
    parser.add_argument("--patch", type=int, default=12, help="patch side in model pixels (default 12)")
    parser.add_argument("--stride", type=int, default=4, help="patch step in pixels (default 4)")


def main(args):
    from deepscope.galaxy.figures import write_occlusion_png

    p_base = write_occlusion_png(args.image, args.out, model=args.model, patch=args.patch, stride=args.stride)
    print(f"{args.image}\tp={p_base:.4f}")
