"""Convert particle coordinates between formats and frames, explicitly.

Reads STAR, EMAN BOX, CryoPPP CSV or cryoSPARC .cs (by suffix) and writes
the format of --to. Nothing changes frame unless asked: --flip-y HEIGHT
maps y -> HEIGHT-1-y (MRC frame <-> upside-down image frame); BOX corners
are read as corner + box/2 and written as centre - --box-size/2.
INPUT may be files or directories; OUT is a directory of <stem>.<to>.

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
                        help="micrograph shape (needed for cs; default: none)")


def main(args):
    from deepscope.cryoem.coordinates import convert_coordinate_files
    from deepscope.errors import BatchError

    rows, failures = convert_coordinate_files(args.inputs, args.out, args.to, flip_height=args.flip_y,
                                              box_size=args.box_size, shape=args.shape)
    for row in rows:
        print(f"{row['file']}\t{row['n_particles']} particles\t{row['out']}")
    if failures:
        raise BatchError(failures)
