"""Convert particle coordinates between formats and frames, explicitly.

Reads STAR, EMAN BOX, CryoPPP CSV or cryoSPARC .cs (by suffix) and writes
the format of --to. Nothing changes frame unless asked: --flip-y HEIGHT
maps y -> HEIGHT-1-y (MRC frame <-> upside-down image frame); BOX corners
are read as corner + box/2 and written as centre - --box-size/2.
INPUT may be files or directories; OUT is a directory of <stem>.<to>.
STAR files get RELION's "# version 30001" line. A cryoSPARC .cs file gets
a uid per pick that is the same on every conversion (derived from the
micrograph's name and the pick's row), location/micrograph_uid, _path,
_shape, the centre fractions and the score as pick_stats/ncc_score; with
--micrographs the micrograph path (relative to OUT), shape and MRC pixel
size (location/micrograph_psize_A) come from the micrograph of the same
stem, else the shape is --shape and the path the file's stem.

Example (EMPIAR-10017 Topaz picks, MRC frame BOX -> JPEG frame STAR):

  deepscope cryoem convert ../shared/data/cryoem/empiar10017/peer_picks/topaz_repic \\
      --to star --flip-y 4096 --out topaz_star
"""


def add_args(parser):
    from deepscope.cli.options import add_flip_y_arg

    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="coordinate files or directories")
    parser.add_argument("--to", required=True, choices=["star", "box", "csv", "cs"], help="output format (required)")
    parser.add_argument("--out", required=True, help="output directory (required)")
    add_flip_y_arg(parser, "the coordinates")
    parser.add_argument("--box-size", type=float,
                        help="box / particle diameter in px (needed for box and csv; default: none)")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("ROWS", "COLS"),
                        help="micrograph shape (needed for cs without --micrographs; default: none)")
    parser.add_argument("--micrographs", metavar="DIR",
                        help="--to cs: directory of the micrographs, paired by stem, for the path, shape and pixel "
                             "size (default: none)")


def main(args):
    from deepscope.cryoem.convert import convert_coordinate_files
    from deepscope.errors import BatchError

    rows, failures = convert_coordinate_files(args.inputs, args.out, args.to, flip_height=args.flip_y,
                                              box_size=args.box_size, shape=args.shape,
                                              micrograph_dir=args.micrographs)
    for row in rows:
        print(f"{row['file']}\t{row['n_particles']} particles\t{row['out']}")
    if failures:
        raise BatchError(failures)
