"""Simulate raw-looking micrographs with exact particle positions.

The atomic model (mmCIF or PDB, read with gemmi), or a synthetic shape of
uniform density (sphere, shell, rod, ring, blob, clump; --shape-diameter
Angstrom across), is placed in random orientations without overlap,
projected, convolved with a CTF and buried in Gaussian noise at the chosen
SNR (signal variance / noise variance). --ice, --carbon and --aggregates add
an uneven ice layer, a carbon film beyond a wavy edge and clumps of
overlapping particles (not counted as particles). OUT
gets micrograph_NNN.mrc (float32) and coords/micrograph_NNN.star with the
true centres and Euler angles, plus simulation.yaml with the settings and
the particle diameter in pixels.

Example:

  deepscope cryoem simulate ../shared/data/cryoem/structures/5a1a.cif --out sim \\
      --count 2 --size 1024 --pixel-size 4 --snr 0.05
  deepscope cryoem simulate ring --shape-diameter 200 --out sim_ring --count 2 --size 512 \\
      --pixel-size 8 --ice 0.2 --carbon 0.2 --aggregates 2
"""


def add_args(parser):
    parser.add_argument("structure", help="atomic model (.cif, .pdb) or a synthetic shape: "
                        "sphere, shell, rod, ring, blob, clump")
    parser.add_argument("--out", required=True, help="output directory (required)")
    parser.add_argument("--count", type=int, default=4, help="micrographs to simulate (default 4)")
    parser.add_argument("--size", type=int, default=1024, help="micrograph side in pixels (default 1024)")
    parser.add_argument("--particles", type=int, default=60, help="particles per micrograph, at most (default 60)")
    parser.add_argument("--pixel-size", type=float, default=4.0, help="Angstrom per pixel (default 4.0)")
    parser.add_argument("--defocus", type=float, default=15000.0, help="underfocus in Angstrom (default 15000)")
    parser.add_argument("--snr", type=float, default=0.05, help="signal variance / noise variance (default 0.05)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of micrograph 0; micrograph i uses SEED+i (default 0)")
    parser.add_argument("--shape-diameter", type=float, default=200.0,
                        help="a synthetic shape's diameter in Angstrom (default 200)")
    parser.add_argument("--ice", type=float, default=0.0,
                        help="uneven ice: std of a smooth background in units of the particles' signal (default 0)")
    parser.add_argument("--carbon", type=float, default=0.0,
                        help="fraction of the micrograph under a carbon film (default 0: none)")
    parser.add_argument("--aggregates", type=int, default=0,
                        help="clumps of 3-8 overlapping particles per micrograph, not counted (default 0)")


def main(args):
    from deepscope.cryoem.synthetic import Conditions, write_simulated_micrographs

    conditions = Conditions(ice=args.ice, carbon=args.carbon, aggregates=args.aggregates)
    rows, diameter = write_simulated_micrographs(args.structure, args.out, args.count, args.size, args.particles,
                                                 args.pixel_size, args.defocus, args.snr, args.seed,
                                                 args.shape_diameter, conditions)
    for row in rows:
        print(f"{row['micrograph']}\t{row['n_particles']} particles")
    print(f"particle diameter: {diameter:.1f} px")
