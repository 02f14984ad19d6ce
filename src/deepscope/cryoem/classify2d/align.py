"""In-plane alignment of particle images: polar resampling and correlation over every angle at once.

An image resampled on a polar grid (rings one pixel apart, :data:`N_ANGLES`
angles) turns into a cyclic shift along the angle when the particle turns,
so its correlation with a reference at every angle is one inverse FFT of
the product of their angular spectra. Translations are searched by
resampling the image around a few shifted centres. Everything is batched
on torch, so the same code runs on a GPU.

Coordinates follow :func:`torch.nn.functional.grid_sample` with
``align_corners=False``; a box is centred on pixel ``size // 2``, where
:mod:`deepscope.cryoem.extract` puts the pick.
"""

# Rings one pixel apart, 64 angles (5.6 degrees: under 2 px of arc at the
# edge of a 16 px particle radius).
N_ANGLES = 64


def _centre(size, device):
    """Normalised grid coordinate of box pixel ``size // 2`` (grid_sample, align_corners=False)."""
    import torch

    return torch.tensor((2 * (size // 2) + 1) / size - 1, device=device)


def circular_mask(size: int, radius: float, width: float = 2.0, device="cpu"):
    """A ``(size, size)`` soft disk around pixel ``size // 2``: 1 inside ``radius``, a cosine fall-off of ``width`` px.

    Examples
    --------
    >>> mask = circular_mask(9, 2, width=1)
    >>> float(mask[4, 4]), float(mask[4, 0])
    (1.0, 0.0)
    """
    import torch

    grid = torch.arange(size, device=device, dtype=torch.float32) - size // 2
    r = torch.sqrt(grid[:, None] ** 2 + grid[None, :] ** 2)
    fall = ((r - radius) / width).clamp(0, 1)
    return 0.5 * (1 + torch.cos(torch.pi * fall))


def polar_grid(size: int, n_rings: int, shift=(0.0, 0.0), device="cpu"):
    """Sampling points of a polar image of ``size``-px boxes for :func:`torch.nn.functional.grid_sample`.

    Returns ``(n_rings, N_ANGLES, 2)`` normalised ``(x, y)`` coordinates: ring
    ``i`` at angle ``j`` is ``centre + (i + 1) * (cos, sin)(2 pi j / N_ANGLES)``
    pixels, the centre ``shift`` (x, y) pixels from box pixel ``size // 2``.
    """
    import torch

    step = 2.0 / size
    radii = torch.arange(1, n_rings + 1, device=device, dtype=torch.float32)[:, None] * step
    theta = torch.arange(N_ANGLES, device=device, dtype=torch.float32) * (2 * torch.pi / N_ANGLES)
    centre = _centre(size, device)
    x = centre + shift[0] * step + radii * torch.cos(theta)[None, :]
    y = centre + shift[1] * step + radii * torch.sin(theta)[None, :]
    return torch.stack([x, y], dim=-1)


def to_polar(images, n_rings: int, shift=(0.0, 0.0)):
    """Resample ``(n, size, size)`` images on a polar grid: ``(n, n_rings, N_ANGLES)``."""
    import torch.nn.functional as F

    grid = polar_grid(images.shape[-1], n_rings, shift, images.device)
    grid = grid[None].expand(len(images), -1, -1, -1)
    return F.grid_sample(images[:, None], grid, mode="bilinear", align_corners=False)[:, 0]


def polar_spectrum(polar):
    """Angular FFT of polar images, scaled so that a correlation of two is a cosine.

    Each ``(..., n_rings, N_ANGLES)`` image is made zero-mean and unit-norm
    first, rings weighted by their radius (the area each sample stands for);
    then the inverse FFT of ``a * conj(b)``, summed over rings, is the cosine
    similarity at every relative angle. Complex, ``(..., n_rings, N_ANGLES // 2 + 1)``.
    """
    import torch

    n_rings = polar.shape[-2]
    weight = torch.arange(1, n_rings + 1, device=polar.device, dtype=polar.dtype)[:, None]
    polar = polar - (polar * weight).sum((-2, -1), keepdim=True) / (weight.sum() * N_ANGLES)
    norm = torch.sqrt((polar**2 * weight).sum((-2, -1), keepdim=True)).clamp_min(1e-6)
    return torch.fft.rfft(polar / norm * weight.sqrt(), dim=-1)


def shift_offsets(max_shift: int):
    """Integer ``(x, y)`` shifts within a disk of ``max_shift`` pixels.

    Examples
    --------
    >>> len(shift_offsets(0)), len(shift_offsets(1)), len(shift_offsets(2))
    (1, 5, 13)
    """
    return [(dx, dy) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
            if dx * dx + dy * dy <= max_shift * max_shift]


class ShiftedSpectra:
    """Angular spectra of every image at every searched shift, computed once per classification.

    The images do not change between alignment rounds, only the references
    do; spectra of ``chunk`` images at a time are kept in memory up to
    ``budget`` bytes, recomputed beyond that.
    """

    def __init__(self, images, n_rings, max_shift, chunk=512, budget=1 << 30):
        import torch

        self.images = images
        self.n_rings = n_rings
        self.offsets = torch.tensor(shift_offsets(max_shift), dtype=torch.float32, device=images.device)
        self.chunk = chunk
        per_image = len(self.offsets) * n_rings * (N_ANGLES // 2 + 1) * 8
        self._cache = list(self._compute()) if per_image * len(images) <= budget else None

    def _compute(self):
        import torch

        for start in range(0, len(self.images), self.chunk):
            batch = self.images[start:start + self.chunk]
            polar = torch.stack([to_polar(batch, self.n_rings, tuple(o.tolist())) for o in self.offsets], dim=1)
            yield polar_spectrum(polar)  # (b, S, R, F)

    def __iter__(self):
        return iter(self._cache) if self._cache is not None else self._compute()


def align(spectra: ShiftedSpectra, references):
    """Best of the ``(k, size, size)`` references, in-plane angle and shift of every image in ``spectra``.

    Returns
    -------
    labels, angles, shifts, correlation : torch.Tensor
        ``(n,)`` best reference, ``(n,)`` angle in radians by which the
        image's polar samples lead the reference's, ``(n, 2)`` shift (x, y)
        in pixels, ``(n,)`` normalised correlation at the best match.
    """
    import torch

    reference_spectra = polar_spectrum(to_polar(references, spectra.n_rings)).conj()  # (k, R, F)
    results = []
    for batch in spectra:
        # correlation over every relative angle at once: sum over rings of P conj(Q), then inverse FFT
        cross = torch.einsum("bsrf,krf->bskf", batch, reference_spectra)
        correlation = torch.fft.irfft(cross, n=N_ANGLES, dim=-1)  # (b, S, k, A)
        b, s, k, a = correlation.shape
        best, flat = correlation.reshape(b, -1).max(dim=1)
        label = (flat // a) % k
        angle = (flat % a).float() * (2 * torch.pi / N_ANGLES)
        results.append((label, angle, spectra.offsets[flat // (k * a)], best))
    return tuple(torch.cat(parts) for parts in zip(*results))


def transform(images, angles, shifts):
    """Aligned images: ``out(u) = image(centre + shift + R(angle) u)``.

    The inverse of the motion :func:`align` measured (``angles`` in radians,
    ``shifts`` in pixels), so the aligned image matches the reference it was
    compared with; samples from outside the box are 0 (background).
    """
    import torch
    import torch.nn.functional as F

    size = images.shape[-1]
    step = 2.0 / size
    centre = _centre(size, images.device)
    grid = (torch.arange(size, device=images.device, dtype=torch.float32) - size // 2) * step
    ux, uy = grid[None, None, :], grid[None, :, None]  # column, row offsets from the centre
    cos, sin = torch.cos(angles)[:, None, None], torch.sin(angles)[:, None, None]
    x = centre + shifts[:, 0, None, None] * step + cos * ux - sin * uy
    y = centre + shifts[:, 1, None, None] * step + sin * ux + cos * uy
    sample = torch.stack([x, y], dim=-1)
    return F.grid_sample(images[:, None], sample, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
