"""Simulate raw-looking micrographs with exact particle positions.

The atomic model (mmCIF or PDB, read with gemmi) is placed in random
orientations without overlap, projected, convolved with a CTF and buried in
Gaussian noise at the chosen SNR (signal variance / noise variance). OUT
gets micrograph_NNN.mrc (float32) and coords/micrograph_NNN.star with the
true centres and Euler angles, plus simulation.yaml with the settings and
the particle diameter in pixels.

Example:

  deepscope cryoem simulate ../shared/data/cryoem/structures/5a1a.cif --out sim \\
      --count 2 --size 1024 --pixel-size 4 --snr 0.05
"""


def add_args(parser):
    parser.add_argument("structure", help="atomic model (.cif, .pdb)")
    parser.add_argument("--out", required=True, help="output directory (required)")
    parser.add_argument("--count", type=int, default=4, help="micrographs to simulate (default 4)")
    parser.add_argument("--size", type=int, default=1024, help="micrograph side in pixels (default 1024)")
    parser.add_argument("--particles", type=int, default=60, help="particles per micrograph, at most (default 60)")
    parser.add_argument("--pixel-size", type=float, default=4.0, help="Angstrom per pixel (default 4.0)")
    parser.add_argument("--defocus", type=float, default=15000.0, help="underfocus in Angstrom (default 15000)")
    parser.add_argument("--snr", type=float, default=0.05, help="signal variance / noise variance (default 0.05)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of micrograph 0; micrograph i uses SEED+i (default 0)")


def main(args):
    from deepscope.cryoem.synthetic import write_simulated_micrographs

    rows, diameter = write_simulated_micrographs(args.structure, args.out, args.count, args.size, args.particles,
                                                 args.pixel_size, args.defocus, args.snr, args.seed)
    for row in rows:
        print(f"{row['micrograph']}\t{row['n_particles']} particles")
    print(f"particle diameter: {diameter:.1f} px")
