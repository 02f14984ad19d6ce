"""Raw-looking micrographs with exact particle positions, from an atomic model or a synthetic shape.

Each particle is the model in a uniformly random orientation, projected
along z (atoms weighted by atomic number, blurred by a B-factor-like
Gaussian), placed without overlap; the micrograph is convolved with a
phase-contrast CTF and Gaussian noise is added at a chosen signal-to-noise
ratio: signal variance inside the particles / noise variance (over the whole
micrograph it would depend on how crowded it is). Synthetic shapes
(:data:`SHAPES`: spheres, hollow shells, rods, rings, asymmetric blobs,
clumps; :func:`synthetic_structure`) are uniform point clouds projected the
same way. :class:`Conditions` adds what real grids have: an uneven ice
layer, a carbon film with an edge, aggregates of touching particles (not
counted as particles).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.errors import FormatError, InputError


@dataclass
class Structure:
    """Atom positions (Angstrom, centred on the centroid) and weights."""

    xyz: np.ndarray  # (n_atoms, 3)
    weight: np.ndarray  # atomic numbers, a stand-in for scattering power
    name: str

    @property
    def diameter(self):
        """Diameter in Angstrom of the sphere enclosing every atom."""
        return 2 * float(np.linalg.norm(self.xyz, axis=1).max())


def read_structure(path):
    """Read an mmCIF or PDB model (optionally gzipped) with gemmi: the first model, without waters, ligands, hydrogens.

    Returns
    -------
    Structure

    Raises
    ------
    FormatError
        If gemmi cannot read the file or it has no atoms.
    """
    import gemmi

    path = Path(path)
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        msg = f"{path}: not a readable mmCIF/PDB model ({str(exc).splitlines()[0] if str(exc) else exc})"
        raise FormatError(msg) from None
    if len(structure) == 0:
        msg = f"{path}: no models in structure file"
        raise FormatError(msg)
    structure.setup_entities()
    structure.remove_ligands_and_waters()
    structure.remove_hydrogens()
    xyz, weight = [], []
    for chain in structure[0]:
        for residue in chain:
            for atom in residue:
                xyz.append(atom.pos.tolist())
                weight.append(atom.element.atomic_number)
    if not xyz:
        msg = f"{path}: no atoms in structure file"
        raise FormatError(msg)
    xyz = np.asarray(xyz, dtype=np.float64)
    return Structure(xyz - xyz.mean(axis=0), np.asarray(weight, dtype=np.float64), structure.name)


# Synthetic particle shapes: uniform densities, sized so the sphere that encloses them has the diameter asked for.
SHAPES = ("sphere", "shell", "rod", "ring", "blob", "clump")
POINTS_PER_SHAPE = 20000


def _ball(rng, n, radius=1.0):
    """``n`` points uniform in a ball of ``radius``."""
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * radius * rng.uniform(0, 1, (n, 1)) ** (1 / 3)


def synthetic_structure(shape: str, diameter: float, seed: int = 0) -> Structure:
    """A synthetic particle of uniform density as a point cloud, ``diameter`` Angstrom across.

    Parameters
    ----------
    shape : str
        One of :data:`SHAPES`: ``sphere``; ``shell`` (hollow, a quarter of
        the radius thick, like apoferritin or a capsid); ``rod`` (4:1);
        ``ring`` (a torus, like a chaperonin seen end on); ``blob`` (three
        to five overlapping ellipsoids, asymmetric); ``clump`` (five to nine
        small balls packed together).
    diameter : float
        Diameter in Angstrom of the sphere enclosing it (what
        :attr:`Structure.diameter` reports, the convention of the atomic models).
    seed : int
        Draws the blob's and the clump's parts.

    Returns
    -------
    Structure
        Unit weights, centred on the centroid.

    Raises
    ------
    InputError
        If the shape is unknown or the diameter not positive.

    Examples
    --------
    >>> round(synthetic_structure("ring", 150.0).diameter, 1)
    150.0
    """
    if shape not in SHAPES or not diameter > 0:
        msg = f"shape must be one of {', '.join(SHAPES)} with a positive diameter; got {shape!r}, {diameter}"
        raise InputError(msg)
    rng = np.random.default_rng(seed)
    n = POINTS_PER_SHAPE
    if shape == "sphere":
        xyz = _ball(rng, n)
    elif shape == "shell":
        xyz = _ball(rng, 4 * n)
        xyz = xyz[np.linalg.norm(xyz, axis=1) >= 0.75][:n]
    elif shape == "rod":
        # a cylinder 4 times as long as it is wide
        angle, radius = rng.uniform(0, 2 * np.pi, n), 0.125 * np.sqrt(rng.uniform(0, 1, n))
        xyz = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(-0.5, 0.5, n)])
    elif shape == "ring":
        # a torus: tube radius 0.3 of the ring's radius
        around, angle, radius = (rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 2 * np.pi, n),
                                 0.3 * np.sqrt(rng.uniform(0, 1, n)))
        xyz = np.column_stack([(1 + radius * np.cos(angle)) * np.cos(around),
                               (1 + radius * np.cos(angle)) * np.sin(around), radius * np.sin(angle)])
    elif shape == "blob":
        parts = rng.integers(3, 6)
        centres = rng.normal(0, 0.35, (parts, 3))
        axes = rng.uniform(0.25, 0.6, (parts, 3))
        sizes = rng.multinomial(n, np.prod(axes, axis=1) / np.prod(axes, axis=1).sum())
        xyz = np.concatenate([c + _ball(rng, k) * a for c, a, k in zip(centres, axes, sizes)])
    else:  # clump
        parts = rng.integers(5, 10)
        centres = [np.zeros(3)]
        while len(centres) < parts:
            # each new ball touches one already placed
            direction = rng.normal(size=3)
            centres.append(centres[rng.integers(len(centres))] + 0.36 * direction / np.linalg.norm(direction))
        xyz = np.concatenate([c + _ball(rng, n // parts, 0.2) for c in centres])
    xyz = xyz - xyz.mean(axis=0)
    xyz *= diameter / (2 * np.linalg.norm(xyz, axis=1).max())
    return Structure(xyz, np.ones(len(xyz)), shape)


@dataclass(frozen=True)
class Conditions:
    """What a real grid adds to the particles (all off by default: clean, thin, even ice)."""

    ice: float = 0.0  # std of a smooth ice-thickness background, in units of the particles' signal std
    carbon: float = 0.0  # fraction of the micrograph under a carbon film, beyond one wavy edge (0: none)
    aggregates: int = 0  # clumps of 3-8 overlapping particles, not counted as particles

    def __post_init__(self):
        if self.ice < 0 or not 0 <= self.carbon < 1 or self.aggregates < 0:
            msg = (f"conditions need ice >= 0, 0 <= carbon < 1 and aggregates >= 0; got ice={self.ice}, "
                   f"carbon={self.carbon}, aggregates={self.aggregates}")
            raise InputError(msg)


def ctf_2d(shape, pixel_size, defocus, voltage=300.0, cs=2.7, amplitude_contrast=0.07):
    """Phase-contrast transfer function on the ``numpy.fft.fft2`` grid of an image of ``shape``.

    Units: ``pixel_size`` and ``defocus`` (underfocus, positive) in Angstrom,
    ``voltage`` in kV, spherical aberration ``cs`` in mm.
    """
    volts = voltage * 1e3
    # relativistic electron wavelength in Angstrom
    wavelength = 12.2643 / np.sqrt(volts + 0.97845e-6 * volts**2)
    ky = np.fft.fftfreq(shape[0], d=pixel_size)
    kx = np.fft.fftfreq(shape[1], d=pixel_size)
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    chi = np.pi * wavelength * defocus * k2 - 0.5 * np.pi * cs * 1e7 * wavelength**3 * k2**2
    return -(np.sqrt(1 - amplitude_contrast**2) * np.sin(chi) + amplitude_contrast * np.cos(chi))


def _place_centres(shape, n_particles, min_distance, margin, rng, allowed=None, taken=()):
    # rejection sampling: simple and exact for the sparse-to-medium packing
    # micrographs have; gives up (fewer particles) rather than loop forever.
    # `allowed`: a boolean map of where centres may fall; `taken`: (x, y, radius) already there.
    centres = []
    for _ in range(n_particles * 200):
        if len(centres) == n_particles:
            break
        candidate = rng.uniform([margin, margin], [shape[1] - margin, shape[0] - margin])
        if allowed is not None and not allowed[int(candidate[1]), int(candidate[0])]:
            continue
        if all(np.hypot(*(candidate - c)) >= min_distance for c in centres) and all(
                np.hypot(candidate[0] - x, candidate[1] - y) >= r for x, y, r in taken):
            centres.append(candidate)
    return np.asarray(centres, dtype=np.float64).reshape(-1, 2)


def _carbon_mask(shape, fraction, rng):
    """Where a carbon film lies: beyond a wavy edge, about ``fraction`` of the micrograph."""
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    angle = rng.uniform(0, 2 * np.pi)
    # signed distance from a line through the centre, the line's own wave added
    along = (cols - shape[1] / 2) * np.cos(angle) + (rows - shape[0] / 2) * np.sin(angle)
    across = -(cols - shape[1] / 2) * np.sin(angle) + (rows - shape[0] / 2) * np.cos(angle)
    wave = 0.04 * max(shape) * np.sin(2 * np.pi * across / max(shape) * rng.uniform(0.5, 2) + rng.uniform(0, 6.3))
    # the line's offset that leaves `fraction` of the pixels beyond it
    offset = np.quantile(along + wave, 1 - fraction)
    return along + wave > offset


def simulate_micrograph(structure, shape=(1024, 1024), n_particles=60, pixel_size=4.0,
                        defocus=15000.0, snr=0.1, bfactor_sigma=1.0, seed=0, conditions=Conditions()):
    """Simulate one raw micrograph with known particle centres.

    Parameters
    ----------
    structure : Structure
        Atomic model (see :func:`read_structure`).
    shape : tuple of int
        ``(rows, columns)`` of the micrograph.
    n_particles : int
        Particles to place (fewer if they do not fit without overlap).
    pixel_size, defocus : float
        Angstrom per pixel; underfocus in Angstrom.
    snr : float
        Signal variance inside the particle disks / noise variance (cryo-EM
        data: 0.01 - 0.1); ``inf`` for no noise.
    bfactor_sigma : float
        Gaussian blur (pixels) standing in for atomic size and B-factor.
    seed : int
    conditions : Conditions
        Ice gradient, carbon film and aggregates; particles are placed only
        on the open hole, clear of the aggregates.

    Returns
    -------
    image : numpy.ndarray
        ``float32`` micrograph.
    particles : pandas.DataFrame
        ``x``, ``y`` (pixel centres), ``score`` (NaN) and Euler angles
        ``rot``, ``tilt``, ``psi`` (ZYZ, degrees).
    diameter : float
        Particle diameter in pixels.

    Raises
    ------
    InputError
        If a parameter is out of range.

    Examples
    --------
    >>> s = Structure(np.array([[0.0, 0, 0], [20.0, 0, 0]]), np.array([6.0, 6.0]), "toy")
    >>> image, parts, d = simulate_micrograph(s, shape=(64, 64), n_particles=2, pixel_size=2.0)
    >>> image.shape, len(parts)
    ((64, 64), 2)
    """
    from scipy import ndimage
    from scipy.spatial.transform import Rotation

    if pixel_size <= 0 or snr <= 0 or n_particles < 1 or min(shape) < 16:
        msg = (f"simulation needs pixel_size > 0, snr > 0, n_particles >= 1 and shape >= 16 px; "
               f"got pixel_size={pixel_size}, snr={snr}, n_particles={n_particles}, shape={shape}")
        raise InputError(msg)
    rng = np.random.default_rng(seed)
    diameter = structure.diameter / pixel_size
    carbon = _carbon_mask(shape, conditions.carbon, rng) if conditions.carbon > 0 else np.zeros(shape, dtype=bool)
    aggregates = _place_centres(shape, conditions.aggregates, 2 * diameter, diameter, rng, allowed=~carbon)
    taken = [(x, y, 1.5 * diameter) for x, y in aggregates]
    centres = _place_centres(shape, n_particles, diameter, diameter / 2, rng, allowed=~carbon, taken=taken)
    # each aggregate: 3-8 copies, their centres within half a diameter of its own (overlapping)
    members = [centre + rng.uniform(-diameter / 2, diameter / 2, 2)
               for centre in aggregates for _ in range(rng.integers(3, 9))]
    everything = np.concatenate([centres, np.reshape(members, (-1, 2))])
    rotations = Rotation.random(len(everything), random_state=rng)

    # splat every atom of every particle into one density image at once
    xs, ys, ws = [], [], []
    for centre, rotation in zip(everything, rotations):
        xyz = rotation.apply(structure.xyz) / pixel_size
        xs.append(xyz[:, 0] + centre[0])
        ys.append(xyz[:, 1] + centre[1])
        ws.append(structure.weight)
    x, y, w = (np.concatenate(v) if v else np.zeros(0) for v in (xs, ys, ws))
    cols = np.clip(np.round(x).astype(np.int64), 0, shape[1] - 1)
    rows = np.clip(np.round(y).astype(np.int64), 0, shape[0] - 1)
    density = np.bincount(rows * shape[1] + cols, weights=w, minlength=shape[0] * shape[1])
    density = ndimage.gaussian_filter(density.reshape(shape), bfactor_sigma)
    if carbon.any():
        # a film about as dense as a particle's projection, with its own fine grain
        film = density[density > 0].mean() if (density > 0).any() else 1.0
        grain = ndimage.gaussian_filter(rng.normal(0, 1, shape), 1.5)
        density += carbon * film * (1 + 0.5 * grain / grain.std())

    signal = np.real(np.fft.ifft2(np.fft.fft2(density) * ctf_2d(shape, pixel_size, defocus)))
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    inside = np.zeros(shape, dtype=bool)
    for x, y in centres:
        inside |= (cols - x) ** 2 + (rows - y) ** 2 <= (diameter / 2) ** 2
    signal -= signal[~inside].mean() if (~inside).any() else signal.mean()
    signal /= signal[inside].std() or 1.0
    if conditions.ice > 0:
        # uneven ice: a smooth field a few particle diameters across
        ice = ndimage.gaussian_filter(rng.normal(0, 1, shape), 2 * diameter, mode="wrap")
        signal -= conditions.ice * ice / (ice.std() or 1.0)
    noise = rng.normal(0.0, 1.0 / np.sqrt(snr), size=shape) if np.isfinite(snr) else 0.0
    image = (signal + noise).astype(np.float32)

    eulers = rotations[:len(centres)].as_euler("ZYZ", degrees=True) if len(centres) else np.zeros((0, 3))
    particles = pd.DataFrame({"x": centres[:, 0], "y": centres[:, 1], "score": np.nan,
                              "rot": eulers[:, 0], "tilt": eulers[:, 1], "psi": eulers[:, 2]})
    return image, particles, diameter


def write_simulated_micrographs(structure_path: str | Path, out_dir: str | Path, count: int = 4, size: int = 1024,
                                n_particles: int = 60, pixel_size: float = 4.0, defocus: float = 15000.0,
                                snr: float = 0.05, seed: int = 0, shape_diameter: float = 200.0,
                                conditions: Conditions = Conditions()) -> tuple[list[dict], float]:
    """Simulate micrographs into a directory: ``cryoem simulate``.

    Parameters
    ----------
    structure_path : str or Path
        Atomic model (:func:`read_structure`), or the name of one of the
        synthetic :data:`SHAPES`.
    out_dir : str or Path
        Receives ``micrograph_NNN.mrc``, ``coords/micrograph_NNN.star`` and
        ``simulation.yaml`` (the settings and the particle diameter).
    count, size, n_particles : int
        Micrographs, their side in pixels, particles per micrograph (at most).
    pixel_size, defocus, snr : float
        See :func:`simulate_micrograph`; micrograph ``i`` uses seed ``seed + i``.
    seed : int
    shape_diameter : float
        A synthetic shape's diameter in Angstrom (ignored for atomic models).
    conditions : Conditions
        Ice, carbon and aggregates of every micrograph.

    Returns
    -------
    rows : list of dict
        ``micrograph`` (path) and ``n_particles`` per micrograph.
    diameter : float
        Particle diameter in pixels.

    Raises
    ------
    InputError
        If ``count`` is below 1 or a shape's diameter is not positive.
    FormatError
        If the structure cannot be read.
    """
    import yaml

    from deepscope.core.files import atomic_path, check_writable
    from deepscope.cryoem.io import write_coordinates, write_mrc

    if count < 1:
        msg = f"--count must be at least 1, got {count}"
        raise InputError(msg)
    shape = str(structure_path) in SHAPES
    if not shape and not Path(structure_path).exists():
        msg = f"{structure_path}: no such file, and not a synthetic shape ({', '.join(SHAPES)})"
        raise InputError(msg)
    structure = (synthetic_structure(str(structure_path), shape_diameter, seed) if shape
                 else read_structure(Path(structure_path)))
    out_dir = check_writable(out_dir, is_dir=True)
    check_writable(out_dir / "coords", is_dir=True)
    rows, diameter = [], None
    for index in range(count):
        image, particles, diameter = simulate_micrograph(structure, (size, size), n_particles, pixel_size, defocus,
                                                         snr, seed=seed + index, conditions=conditions)
        stem = f"micrograph_{index:03d}"
        write_mrc(image, out_dir / f"{stem}.mrc", pixel_size)
        write_coordinates(particles, out_dir / "coords" / f"{stem}.star")
        rows.append({"micrograph": str(out_dir / f"{stem}.mrc"), "n_particles": len(particles)})
    settings = {"structure": str(structure_path), "count": count, "size": size, "particles": n_particles,
                "pixel_size": pixel_size, "defocus": defocus, "snr": snr, "seed": seed,
                **({"shape_diameter_A": shape_diameter} if shape else {}),
                "ice": conditions.ice, "carbon": conditions.carbon, "aggregates": conditions.aggregates,
                "diameter_px": round(float(diameter), 2)}
    with atomic_path(out_dir / "simulation.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(settings, sort_keys=False))
    return rows, float(diameter)
