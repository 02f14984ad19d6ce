"""Small cryo-EM data with known truth, written for tests (import as ``cryoem.cryoem_helpers``)."""

from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.cryoem.io import write_coordinates, write_mrc


HAT_SIGMA = 0.33 * 8 / np.sqrt(2)


def write_blob_micrographs(folder, n_micrographs=3, n_particles=12, size=128, seed=0):
    """Write toy micrographs of dark blobs, ``mics/m<i>.mrc``, with their exact centres, ``coords/m<i>.star``.

    Each blob is 8 px across by the profile real particles have (a dark core
    returning to the ice level at a third of the diameter, then a faint
    halo: a Mexican hat), so the micrographs' own size estimate agrees with
    the 8 px the tests pick at. A picker learns these in a couple of epochs:
    the smallest end-to-end check of training, picking and evaluation.
    Returns ``folder``.
    """
    folder = Path(folder)
    (folder / "mics").mkdir(parents=True, exist_ok=True)
    (folder / "coords").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    for index in range(n_micrographs):
        centres = rng.uniform(12, size - 12, size=(n_particles, 2))
        image = rng.normal(0, 0.3, (size, size))
        for x, y in centres:
            # zero at r = sqrt(2) s = 0.33 d (CORE_RADIUS_FRACTION of deepscope.cryoem.particle_size)
            r2 = ((cols - x) ** 2 + (rows - y) ** 2) / (2 * HAT_SIGMA**2)
            image -= (1 - r2) * np.exp(-r2)
        write_mrc(image.astype(np.float32), folder / "mics" / f"m{index}.mrc")
        write_coordinates(pd.DataFrame({"x": centres[:, 0], "y": centres[:, 1]}),
                          folder / "coords" / f"m{index}.star")
    return folder
