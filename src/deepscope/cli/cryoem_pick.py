"""Pick particles in micrographs with a trained U-Net.

INPUT is any mix of micrograph files and directories (MRC, MRCS, TIFF,
JPEG, PNG). For each micrograph OUT/<stem>.star gets rlnCoordinateX,
rlnCoordinateY (x = column, y = row of the image as read; sub-pixel
centres, not the binning grid) and rlnAutopickFigureOfMerit, after
RELION's "# version 30001" line; OUT/coordinate_files.star lists each
micrograph picked with its STAR file (data_coordinate_files:
rlnMicrographName, rlnMicrographCoordinates; paths relative to OUT), the
index RELION 4's picking jobs write. OUT is a directory: a name ending in
.star (.box, .csv, .cs) is refused unless that directory exists. The
same pixels give the same picks in any container: --enhance auto decides from
the pixels (a light low-pass for noisy, raw-like micrographs), never from
the file type; so does --polarity auto (micrographs whose particles are
brighter than the ice are inverted). --diameter auto estimates the particle
size from the first micrographs; a --diameter 1.5x off that estimate (a
binned micrograph with the unbinned diameter) gets a warning naming both,
a refusal with --strict. --overlays writes OUT/<stem>_overlay.png (the whole
micrograph, binned) and OUT/<stem>_overlay_r<i>c<j>.png (1024 px tiles at
full resolution, picks circled at the particle diameter). Without --model the
general picker is used (cryoem_general: trained on EMPIAR-10017 micrographs,
simulated particles of many shapes and unlabelled 80S ribosome micrographs;
--model cryoem_empiar10017 is the beta-galactosidase specialist); --diameter
rescales each micrograph to the size the model works at. Picks too near
the edge are dropped: within the model's margin, tuned with its threshold
at training (0.5 diameters for cryoem_general, 1.2 for cryoem_empiar10017),
or --edge-margin diameters (1.0 keeps only particles whose box of twice the
diameter fits).
--device cuda runs the network on a GPU. A micrograph may have at most
16384 x 16384 pixels (checked from its header before reading; bin larger ones).
Bad files are listed at the end; the good ones are still written.

A killed run restarted with the same arguments picks only the micrographs
it had not finished. --workers N runs on a local Dask cluster, --scheduler
ADDRESS on an existing one (whose workers must see the same paths).

Example:

  deepscope cryoem pick ../shared/data/cryoem/empiar10017/micrographs/Falcon_2012_06_12-14_33_35_0.jpg \\
      --diameter 108 --out picks --overlays
"""


from deepscope.cli.options import (add_batch_args, add_device_arg, add_engine_arg, add_model_arg, add_threads_arg,
                                   batch_options_from_args)


def add_args(parser):
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="micrograph files, directories or .tar shards")
    parser.add_argument("--diameter", required=True, metavar="PX|auto",
                        help="particle diameter in micrograph pixels, or auto: estimated from the first micrographs "
                             "(required; a number 1.5x off the estimate is warned about)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse a --diameter 1.5x off the micrographs' own instead of warning (default: warn)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory for <stem>.star files and coordinate_files.star (required)")
    add_model_arg(parser, "cryoem")
    parser.add_argument("--threshold", type=float, help="minimum pick score (default: tuned at training)")
    parser.add_argument("--edge-margin", type=float, metavar="DIAMETERS",
                        help="drop picks nearer the micrograph's edge than this many diameters (default: the "
                             "model's; 0.5 keeps every particle that lies wholly inside)")
    parser.add_argument("--augment", type=int, choices=[1, 2, 4, 8],
                        help="test-time views averaged (default: the model's; more views: slower, smoother maps)")
    parser.add_argument("--enhance", choices=["auto", "on", "off"], default="auto",
                        help="auto (default): decided from the pixels, a light low-pass when they are noisy, "
                             "in any file type; on: band-pass and histogram equalisation; off: pixels as read")
    parser.add_argument("--polarity", choices=["auto", "dark", "bright"], default="auto",
                        help="particles darker (dark) or brighter (bright) than the ice; auto (default): read from "
                             "each micrograph's pixels, so inverted micrographs give the same picks")
    parser.add_argument("--masks", action="store_true", help="also write <stem>_mask.png (particle probability; default: not written)")
    parser.add_argument("--overlays", action="store_true", help="also write <stem>_overlay.png (binned) and full-resolution tiles <stem>_overlay_r<i>c<j>.png "
                             "with the picks (default: not written)")
    parser.add_argument("--recentre", action="store_true",
                        help="re-centre each pick on the micrograph by cross-correlation with the picks' own "
                             "rotationally averaged reference, as 2D classification re-centres (default: off: "
                             "centroid of the score map minus the shipped model's measured offset, which scores "
                             "best against the CryoPPP labels; see docs/cryoem.md)")
    add_device_arg(parser)
    add_engine_arg(parser)
    add_threads_arg(parser)
    add_batch_args(parser, "micrographs")


def diameter_value(text: str) -> float | str:
    """``--diameter``: a number of pixels (checked by the library), or ``auto``.

    Raises
    ------
    InputError
        If it is neither.

    Examples
    --------
    >>> diameter_value("108"), diameter_value("auto")
    (108.0, 'auto')
    """
    from deepscope.errors import InputError

    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        msg = f"--diameter must be positive (pixels) or auto, got {text!r}"
        raise InputError(msg) from None


def main(args):
    import sys
    import warnings

    from deepscope.cryoem.predictor import pick_micrographs
    from deepscope.errors import BatchError

    diameter = diameter_value(args.diameter)
    with warnings.catch_warnings():
        # one line each, like the errors: the user needs the message, not the line of code that warned
        warnings.showwarning = lambda message, *_, **__: print(f"deepscope: warning: {message}", file=sys.stderr)
        rows, failures = pick_micrographs(args.inputs, diameter, args.out, model=args.model,
                                          threshold=args.threshold, augment=args.augment,
                                          edge_margin=args.edge_margin, enhance=args.enhance, masks=args.masks,
                                          overlays=args.overlays, recentre=args.recentre,
                                          options=batch_options_from_args(args), polarity=args.polarity,
                                          strict=args.strict)
    for row in rows:
        print(f"{row['file']}\t{row['n_picks']} picks\t{row['star']}")
    if failures:
        raise BatchError(failures)
