"""Extract normalised particle images into an MRC stack with a RELION 4 STAR file.

COORDS are coordinate files or directories of them (STAR, BOX, CryoPPP CSV,
cryoSPARC .cs), paired with the micrographs of --micrographs by file stem.
Each particle is a --box square centred on its coordinate (x = column,
y = row of the micrograph as read), Fourier-cropped to --size pixels, and
normalised to zero mean and unit standard deviation outside the particle
disk (RELION's convention); box pixels past the micrograph edge are
background (0). --out gets the stack, written as the particles are cut
(memory does not grow with their number), and the same name with .star
gets RELION 4's two blocks: data_optics (rlnOpticsGroup,
rlnOpticsGroupName, rlnMicrographOriginalPixelSize, rlnImagePixelSize,
rlnImageSize, rlnImageDimensionality, and rlnVoltage,
rlnSphericalAberration, rlnAmplitudeContrast when given) and
data_particles (rlnImageName N@STACK, rlnMicrographName, rlnCoordinateX,
rlnCoordinateY, rlnOpticsGroup). Paths in it are relative to the STAR
file's folder. The pixel size is --pixel-size, else the micrographs' MRC
headers', else 1.0 A (with a warning). Every micrograph's header is checked
before extraction starts; nothing is written unless every input is good.

Example:

  C=../shared/data/cryoem/empiar10017
  deepscope cryoem extract $C/particles/Falcon_2012_06_12-14_33_35_0.csv --micrographs $C/micrographs \\
      --diameter 108 --box 162 --size 64 --out particles.mrcs
"""

from deepscope.cli.options import add_flip_y_arg


def add_particle_source_args(parser, coords_help, diameter_help):
    """Add ``COORDS ...``, ``--micrographs DIR`` and ``--diameter PX`` (also ``cryoem classify``'s), with their help."""
    parser.add_argument("coords", nargs="+", metavar="COORDS", help=coords_help)
    parser.add_argument("--micrographs", required=True, metavar="DIR",
                        help="directory of the micrographs, matched to coordinate files by stem (required)")
    parser.add_argument("--diameter", type=float, required=True, metavar="PX", help=f"{diameter_help} (required)")


def add_args(parser):
    add_particle_source_args(parser, "coordinate files or directories; PATH,flip-y=HEIGHT for a set upside down",
                             "particle diameter in micrograph pixels (sets the normalisation's background)")
    parser.add_argument("--box", type=int, required=True, metavar="PX", help="box side in micrograph pixels (required)")
    parser.add_argument("--size", type=int, metavar="PX",
                        help="downsample the boxes to PX pixels by Fourier cropping (default: the box size)")
    parser.add_argument("--pixel-size", type=float, metavar="A",
                        help="Angstrom per micrograph pixel, for the stack header and data_optics (default: from the "
                             "micrographs' MRC headers, else 1.0 with a warning)")
    parser.add_argument("--voltage", type=float, metavar="KV",
                        help="acceleration voltage, rlnVoltage (default: not written)")
    parser.add_argument("--cs", type=float, metavar="MM",
                        help="spherical aberration, rlnSphericalAberration (default: not written)")
    parser.add_argument("--amplitude-contrast", type=float, metavar="FRACTION",
                        help="amplitude contrast, rlnAmplitudeContrast, e.g. 0.1 (default: not written)")
    parser.add_argument("--out", required=True, metavar="STACK.mrcs", help="output particle stack (required)")
    add_flip_y_arg(parser)


def main(args):
    from pathlib import Path

    from deepscope.core.files import check_writable
    from deepscope.cryoem.extract import Optics, extract_to_stack
    from deepscope.cryoem.pick_sets import gather_pick_sets, pair_with_micrographs, read_pick_set
    from deepscope.errors import InputError

    if args.diameter <= 0 or args.box <= 0:
        msg = f"--diameter and --box must be positive, got {args.diameter:g} and {args.box}"
        raise InputError(msg)
    if args.size is not None and not 8 <= args.size <= args.box:
        msg = f"--size must be between 8 and --box ({args.box}), got {args.size}"
        raise InputError(msg)
    if args.pixel_size is not None and args.pixel_size <= 0:
        msg = f"--pixel-size must be positive, got {args.pixel_size:g}"
        raise InputError(msg)
    out = Path(args.out)
    if out.suffix.lower() not in (".mrcs", ".mrc"):
        msg = f"{out}: the particle stack must be a .mrcs file"
        raise InputError(msg)
    check_writable(out)
    pick_sets = gather_pick_sets(args.coords, args.flip_y)
    micrographs = pair_with_micrographs(pick_sets, args.micrographs)
    pairs = [(micrographs[stem], table[["x", "y", "source"]]) for s in pick_sets
             for stem, table in read_pick_set(s).items()]
    optics = Optics(args.voltage, args.cs, args.amplitude_contrast)
    summary = extract_to_stack(pairs, args.diameter, args.box, out, args.size, pixel_size=args.pixel_size,
                               optics=optics)
    print(f"{summary.particles} particles from {summary.micrographs} micrograph(s), "
          f"{summary.pixel_size:g} A per pixel")
    print(f"stack: {summary.stack}\nstar: {summary.star}")
