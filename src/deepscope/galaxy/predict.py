"""Predict on galaxy cutouts: one row per good input, bad inputs listed, resumable."""

from deepscope.core.inference import describe_job, predict_to_table
from deepscope.core.options import BatchOptions
from deepscope.core.sources import InputStream
from deepscope.galaxy.classifier import GalaxyClassifier, resolve_model_path
from deepscope.galaxy.io import GALAXY_SUFFIXES

# Galaxies per partition: the unit of resuming and of Dask tasks (about a
# second of work on one core), small enough that a kill loses little.
PARTITION_SIZE = 1024


def predict_galaxies(inputs, out_path, model=None, options=None):
    """Classify cutouts and write the predictions.

    A run killed part-way and restarted with the same arguments skips the
    partitions it had finished (see :mod:`deepscope.core.parts`).

    Parameters
    ----------
    inputs : sequence of str or Path
        Files, directories searched for JPEG/PNG/FITS cutouts, and
        uncompressed ``.tar`` shards of cutouts.
    out_path : str or Path
        ``.csv`` or ``.parquet`` table, or a directory to receive Parquet
        parts (survey scale: nothing is merged in memory).
    model : str, optional
        Shipped model name, run directory or checkpoint (default: the
        shipped bar model).
    options : BatchOptions, optional
        Inputs, batching and cluster (default: :class:`BatchOptions` with
        :data:`PARTITION_SIZE`).

    Returns
    -------
    int
        Number of rows written (``file``, then e.g. ``p_bar`` and
        ``barred``); nothing is written when no input could be read.

    Raises
    ------
    BatchError
        After writing the good rows, if some inputs could not be read.
    """
    import torch

    options = options or BatchOptions(partition_size=PARTITION_SIZE)
    options.check()
    if options.threads:
        torch.set_num_threads(options.threads)
    stream = InputStream(inputs, GALAXY_SUFFIXES, options.catalog, options.path_column)
    model_path = resolve_model_path(model)
    classifier = GalaxyClassifier.load(model_path)
    job = describe_job("galaxy predict", stream, model_path, options.partition_size)
    return predict_to_table(stream, classifier, out_path, job, options, desc="galaxy predict")
