"""Reference-free 2D classification of particle images, batched on torch.

Two stages, the usual recipe made small enough for a few CPU cores:

1. Rotation-invariant clustering. Each image is resampled on a polar grid;
   the magnitudes of its Fourier transform along the angle do not change
   when the particle turns in-plane. PCA of those features and k-means
   give the initial classes.
2. Iterative alignment. Every image is compared with every class average
   at all in-plane angles at once (cross-correlation along the angle of
   the polar images, by FFT) and at a few small shifts; it joins the class
   it matches best, and the averages are recomputed from the aligned
   images. The shift search is kept small on purpose: a class of
   off-centre boxes must stay off-centre, or junk would look like particles.

Images are expected normalised (zero mean, unit standard deviation in the
background, see :mod:`deepscope.cryoem.extract`) and centred on box pixel
``size // 2``.
"""

from dataclasses import dataclass

import numpy as np

from deepscope.cryoem.classify2d.align import (N_ANGLES, ShiftedSpectra, align, circular_mask, polar_spectrum,
                                               to_polar, transform)

# About this many particles per class: enough for an average that shows a
# particle, few enough that different views get their own classes; the junk
# score is calibrated at this class size.
PARTICLES_PER_CLASS = 50
MAX_CLASSES = 50
# Translation searched per alignment round, in image pixels (module docstring: kept small on purpose).
MAX_SHIFT = 2


def default_class_count(n_particles: int) -> int:
    """Classes to ask for: one per :data:`PARTICLES_PER_CLASS` particles, 2 to :data:`MAX_CLASSES`.

    Examples
    --------
    >>> default_class_count(630), default_class_count(40), default_class_count(100000)
    (12, 2, 50)
    """
    return int(np.clip(n_particles // PARTICLES_PER_CLASS, 2, MAX_CLASSES))


@dataclass
class Classes:
    """The result of :func:`classify_images`.

    Attributes
    ----------
    labels : numpy.ndarray
        ``(n,)`` class index of every image, 0 .. ``len(averages) - 1``.
    averages : numpy.ndarray
        ``(k, size, size)`` float32 class averages of the aligned images.
    angles : numpy.ndarray
        ``(n,)`` in-plane angle (degrees) that aligns each image to its class.
    shifts : numpy.ndarray
        ``(n, 2)`` shift (x, y) in image pixels of each image's centre.
    correlation : numpy.ndarray
        ``(n,)`` normalised correlation of each aligned image with its average.
    """

    labels: np.ndarray
    averages: np.ndarray
    angles: np.ndarray
    shifts: np.ndarray
    correlation: np.ndarray


def invariant_features(images, n_rings: int, n_components: int = 16):
    """Rotation-invariant ``(n, n_components)`` features of masked images: PCA of their polar angular power spectra."""
    import torch

    spectrum = polar_spectrum(to_polar(images, n_rings)).abs()
    # The lowest angular frequencies carry the particle's shape; the rest is
    # mostly noise at this size.
    features = spectrum[..., : N_ANGLES // 4].flatten(1)
    features = features - features.mean(0)
    # PCA from the (small) covariance matrix: exact and deterministic, unlike
    # the randomised torch.pca_lowrank, so the same inputs give the same classes
    _, vectors = torch.linalg.eigh(features.T @ features)
    return features @ vectors[:, -min(n_components, features.shape[1]):]


def kmeans(points, k: int, iterations: int = 30, generator=None):
    """k-means with k-means++ seeding of ``(n, d)`` points: labels in ``0 .. k-1`` (an emptied cluster's unused).

    Examples
    --------
    >>> import torch
    >>> points = torch.tensor([[0.0], [0.1], [10.0], [10.1]])
    >>> labels = kmeans(points, 2, generator=torch.Generator().manual_seed(0))
    >>> bool(labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2])
    True
    """
    import torch

    n = len(points)
    first = torch.randint(n, (1,), generator=generator, device="cpu").item()
    centres = [points[first]]
    distance = ((points - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        probabilities = (distance / distance.sum().clamp_min(1e-12)).cpu()
        index = torch.multinomial(probabilities + 1e-12, 1, generator=generator).item()
        centres.append(points[index])
        distance = torch.minimum(distance, ((points - points[index]) ** 2).sum(1))
    centres = torch.stack(centres)
    for _ in range(iterations):
        labels = torch.cdist(points, centres).argmin(1)
        for j in range(k):
            members = points[labels == j]
            if len(members):
                centres[j] = members.mean(0)
    return torch.cdist(points, centres).argmin(1)


def class_averages(images, labels, k: int):
    """Mean image of each class: ``(k, size, size)`` (zeros for an empty class)."""
    import torch

    sums = torch.zeros((k, *images.shape[1:]), device=images.device, dtype=images.dtype)
    sums.index_add_(0, labels, images)
    counts = torch.bincount(labels, minlength=k).clamp_min(1).to(images.dtype)
    return sums / counts[:, None, None]


def _drop_empty(labels, k, min_size):
    """Relabel so that classes with fewer than ``min_size`` members disappear; their images join no class (-1)."""
    import torch

    counts = torch.bincount(labels[labels >= 0], minlength=k)
    keep = torch.nonzero(counts >= min_size).flatten()
    mapping = torch.full((k,), -1, dtype=labels.dtype, device=labels.device)
    mapping[keep] = torch.arange(len(keep), device=labels.device)
    return torch.where(labels >= 0, mapping[labels.clamp_min(0)], labels), len(keep)


def classify_images(images: np.ndarray, n_classes: int, particle_radius: float, iterations: int = 6,
                    max_shift: int = MAX_SHIFT, min_class_size: int = 3, seed: int = 0, device="cpu",
                    progress: bool = True) -> Classes:
    """Reference-free 2D classification (see the module docstring).

    Parameters
    ----------
    images : numpy.ndarray
        ``(n, size, size)`` normalised particle images, centred on pixel ``size // 2``.
    n_classes : int
        Classes to start from (at most ``n / min_class_size``); classes left
        with fewer than ``min_class_size`` members are dissolved and their
        images join the nearest remaining class.
    particle_radius : float
        In image pixels; images are masked to a disk a little larger.
    iterations : int
        Alignment / re-averaging rounds after the initial clustering.
    max_shift : int
        Translation searched per round, in image pixels.
    min_class_size, seed : int
        ``seed`` seeds the k-means initialisation: same inputs, same classes.
    device : str or torch.device
    progress : bool
        Progress bar over the rounds.

    Returns
    -------
    Classes

    Raises
    ------
    InputError
        If there are fewer images than ``min_class_size``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(size=(12, 16, 16)).astype(np.float32)
    >>> images[:6, 6:10, 4:12] += 3  # a bar, in half of the images
    >>> result = classify_images(images, 2, particle_radius=5, iterations=2, progress=False)
    >>> [len(set(part.tolist())) for part in (result.labels[:6], result.labels[6:], result.labels)]
    [1, 1, 2]
    """
    import torch

    from deepscope.core.progress import progress_bar
    from deepscope.errors import InputError

    if len(images) < min_class_size:
        msg = f"2D classification needs at least {min_class_size} particles, got {len(images)}"
        raise InputError(msg)
    device = torch.device(device)
    data, mask, n_rings = masked_images(images, particle_radius, device)
    generator = torch.Generator().manual_seed(seed)
    k = max(1, min(n_classes, len(images) // min_class_size))
    features = invariant_features(data, n_rings)
    labels, k = _drop_empty(kmeans(features, k, generator=generator), k, 1)
    spectra = ShiftedSpectra(data, n_rings, max_shift)
    references = _seed_references(data, features, labels, k, n_rings, max_shift)
    for _ in progress_bar(range(iterations), enabled=progress, desc="classify", unit="round"):
        labels, angles, shifts, correlation = align(spectra, references)
        labels, k = _drop_empty(labels, k, min_class_size)
        if k == 0:  # every class was smaller than min_class_size: one class of everything
            labels, k = torch.zeros_like(labels), 1
        # images of dissolved classes (label -1) sit this round out; the next alignment places them
        kept = labels >= 0
        references = class_averages(transform(data[kept], angles[kept], shifts[kept]), labels[kept], k) * mask
    labels, angles, shifts, correlation = align(spectra, references)
    labels, k = _drop_empty(labels, k, 1)
    averages = class_averages(transform(data, angles, shifts), labels, k) * mask
    return Classes(labels.cpu().numpy(), averages.cpu().numpy(), np.degrees(angles.cpu().numpy()),
                   shifts.cpu().numpy(), correlation.cpu().numpy())


def masked_images(images, particle_radius: float, device="cpu"):
    """Images as classification sees them: masked to a soft disk a little larger than the particle.

    Returns
    -------
    data : torch.Tensor
        ``(n, size, size)`` float32 masked images on ``device``.
    mask : torch.Tensor
        ``(size, size)`` the mask (class averages are masked with it too).
    n_rings : int
        Polar rings the alignment samples (one per pixel of the mask's radius).
    """
    import torch

    size = images.shape[-1]
    # the mask reaches a little past the particle, so an off-centre particle still shows as such
    radius = min(particle_radius * 1.15, size / 2 - 2)
    mask = circular_mask(size, radius, device=device)
    return torch.as_tensor(images, dtype=torch.float32, device=device) * mask, mask, int(np.floor(radius))


def _seed_references(data, features, labels, k, n_rings, max_shift):
    """Initial class averages: members aligned to the member nearest their cluster's centre."""
    import torch

    references = []
    for j in range(k):
        members, points = data[labels == j], features[labels == j]
        seed_image = members[((points - points.mean(0)) ** 2).sum(1).argmin()]
        _, angles, shifts, _ = align(ShiftedSpectra(members, n_rings, max_shift), seed_image[None])
        references.append(transform(members, angles, shifts).mean(0))
    return torch.stack(references)
