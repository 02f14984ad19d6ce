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
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="coordinate files or directories")
    parser.add_argument("--to", required=True, choices=["star", "box", "csv", "cs"], help="output format")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--flip-y", type=int, metavar="HEIGHT", help="flip y with this micrograph height")
    parser.add_argument("--box-size", type=float, help="box / particle diameter in px (needed for box and csv)")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("ROWS", "COLS"),
                        help="micrograph shape (needed for cs)")


def main(args):
    from deepscope.core.files import check_writable, collect_inputs
    from deepscope.cryoem.io import COORDINATE_SUFFIXES, flip_y, read_coordinates, write_coordinates
    from deepscope.errors import BatchError, DeepscopeError, InputError

    if args.to in ("box", "csv") and args.box_size is None:
        msg = f"--to {args.to} needs --box-size (the particle box / diameter in pixels)"
        raise InputError(msg)
    if args.to == "cs" and args.shape is None:
        msg = "--to cs needs --shape ROWS COLS (cryoSPARC stores fractions of the micrograph)"
        raise InputError(msg)
    paths = collect_inputs(args.inputs, COORDINATE_SUFFIXES)
    out_dir = check_writable(args.out, is_dir=True)
    failures = []
    for path in paths:
        try:
            table = read_coordinates(path, allow_empty=True)
            if args.flip_y:
                table = flip_y(table, args.flip_y)
            target = out_dir / f"{path.stem}.{args.to}"
            write_coordinates(table, target, box_size=args.box_size, shape=args.shape)
        except DeepscopeError as exc:
            failures.append((str(path), str(exc)))
            continue
        print(f"{path}\t{len(table)} particles\t{target}")
    if failures:
        raise BatchError(failures)
