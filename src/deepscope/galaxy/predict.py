"""Predict on galaxy cutouts: one row per good input, bad inputs listed, resumable."""

from deepscope.core.cluster import check_cluster_options
from deepscope.core.inference import describe_job, predict_to_table
from deepscope.core.sources import InputStream
from deepscope.galaxy.classifier import GalaxyClassifier, resolve_model_path
from deepscope.galaxy.io import GALAXY_SUFFIXES

# Galaxies per partition: the unit of resuming and of Dask tasks (about a
# second of work on one core), small enough that a kill loses little.
PARTITION_SIZE = 1024


def predict_galaxies(inputs, out_path, model=None, catalog=None, path_column="file", batch_size=512,
                     partition_size=PARTITION_SIZE, read_threads=2, threads=None, workers=None, scheduler=None,
                     progress=True):
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
    catalog : str or Path, optional
        CSV, Parquet or FITS table listing more inputs.
    path_column : str
        Catalogue column with the paths (relative to the catalogue).
    batch_size : int
        Cutouts per forward pass.
    partition_size : int
        Cutouts per partition.
    read_threads : int
        Decoding threads per process.
    threads : int, optional
        Torch CPU threads in process (default: torch's choice); Dask
        workers use their own thread count.
    workers : int, optional
        Run on a local Dask cluster of this many worker processes.
    scheduler : str, optional
        Run on the existing Dask cluster at this address.
    progress : bool

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

    check_cluster_options(workers, scheduler)
    if threads:
        torch.set_num_threads(threads)
    stream = InputStream(inputs, GALAXY_SUFFIXES, catalog, path_column)
    model_path = resolve_model_path(model)
    classifier = GalaxyClassifier.load(model_path)
    job = describe_job("galaxy predict", stream, model_path, partition_size)
    return predict_to_table(stream, classifier, out_path, job, partition_size, batch_size, read_threads, workers,
                            scheduler, progress, desc="galaxy predict")
