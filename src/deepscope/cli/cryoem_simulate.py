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
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--count", type=int, default=4, help="micrographs to simulate")
    parser.add_argument("--size", type=int, default=1024, help="micrograph side in pixels")
    parser.add_argument("--particles", type=int, default=60, help="particles per micrograph (at most)")
    parser.add_argument("--pixel-size", type=float, default=4.0, help="Angstrom per pixel")
    parser.add_argument("--defocus", type=float, default=15000.0, help="underfocus in Angstrom")
    parser.add_argument("--snr", type=float, default=0.05, help="signal variance / noise variance")
    parser.add_argument("--seed", type=int, default=0)


def main(args):
    from pathlib import Path

    import yaml

    from deepscope.core.files import atomic_path, check_writable
    from deepscope.cryoem.io import write_coordinates, write_mrc
    from deepscope.cryoem.synthetic import read_structure, simulate_micrograph
    from deepscope.errors import InputError

    if args.count < 1:
        msg = f"--count must be at least 1, got {args.count}"
        raise InputError(msg)
    structure = read_structure(Path(args.structure))
    out_dir = check_writable(args.out, is_dir=True)
    check_writable(out_dir / "coords", is_dir=True)
    diameter = None
    for index in range(args.count):
        image, particles, diameter = simulate_micrograph(
            structure, (args.size, args.size), args.particles, args.pixel_size, args.defocus, args.snr,
            seed=args.seed + index,
        )
        stem = f"micrograph_{index:03d}"
        write_mrc(image, out_dir / f"{stem}.mrc", args.pixel_size)
        write_coordinates(particles, out_dir / "coords" / f"{stem}.star")
        print(f"{out_dir / f'{stem}.mrc'}\t{len(particles)} particles")
    settings = {"structure": str(args.structure), "count": args.count, "size": args.size,
                "particles": args.particles, "pixel_size": args.pixel_size, "defocus": args.defocus,
                "snr": args.snr, "seed": args.seed, "diameter_px": round(float(diameter), 2)}
    with atomic_path(out_dir / "simulation.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(settings, sort_keys=False))
    print(f"particle diameter: {diameter:.1f} px")
