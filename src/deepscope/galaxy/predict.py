"""Predict on galaxy cutout files: one row per good file, bad files listed."""

import logging

from deepscope.core.files import check_writable, collect_inputs, write_table
from deepscope.core.inference import run_batched
from deepscope.errors import BatchError
from deepscope.galaxy.classifier import GalaxyClassifier
from deepscope.galaxy.io import GALAXY_SUFFIXES

log = logging.getLogger(__name__)


def predict_galaxies(inputs, out_path, model=None, batch_size=512, workers=2, threads=None, progress=True):
    """Classify cutouts and write a CSV or Parquet table of predictions.

    Parameters
    ----------
    inputs : sequence of str or Path
        Files, or directories searched for JPEG/PNG/FITS cutouts.
    out_path : str or Path
        ``.csv`` or ``.parquet`` output.
    model : str, optional
        Shipped model name, run directory or checkpoint (default: the
        shipped bar model).
    batch_size : int
    workers : int
        Decoding threads.
    threads : int, optional
        Torch CPU threads (default: torch's choice).
    progress : bool

    Returns
    -------
    pandas.DataFrame
        The rows written (``file``, then e.g. ``p_bar`` and ``barred``);
        nothing is written when no input could be read.

    Raises
    ------
    BatchError
        After writing the good rows, if some inputs could not be read.
    """
    import pandas as pd
    import torch

    if threads:
        torch.set_num_threads(threads)
    check_writable(out_path)
    paths = collect_inputs(inputs, GALAXY_SUFFIXES)
    classifier = GalaxyClassifier.load(model)
    rows, failures = run_batched(paths, classifier.load_input, classifier.rows, batch_size=batch_size,
                                 workers=workers, progress=progress, desc="galaxy predict")
    table = pd.DataFrame(rows)
    # With no good file there is nothing to write: no empty, misleading table.
    if rows:
        write_table(table, out_path)
        log.info("wrote %d predictions to %s", len(table), out_path)
    if failures:
        raise BatchError(failures)
    return table
