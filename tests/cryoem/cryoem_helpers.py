"""Small cryo-EM data with known truth, written for tests (import as ``cryoem.cryoem_helpers``)."""

from pathlib import Path

import numpy as np
import pandas as pd

from deepscope.cryoem.io import write_coordinates, write_mrc


def write_blob_micrographs(folder, n_micrographs=3, n_particles=12, size=128, seed=0):
    """Write toy micrographs of Gaussian blobs, ``mics/m<i>.mrc``, with their exact centres, ``coords/m<i>.star``.

    A picker learns these in a couple of epochs: the smallest end-to-end
    check of training, picking and evaluation. Returns ``folder``.
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
            image += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 8.0)
        write_mrc(image.astype(np.float32), folder / "mics" / f"m{index}.mrc")
        write_coordinates(pd.DataFrame({"x": centres[:, 0], "y": centres[:, 1]}),
                          folder / "coords" / f"m{index}.star")
    return folder
