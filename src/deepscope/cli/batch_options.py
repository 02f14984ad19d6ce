"""Input and cluster options shared by every batch command (predict, pick)."""


def add_batch_args(parser, noun, partition_size=None):
    """Add --catalog, --path-column, --read-threads, --workers, --scheduler (and --partition-size).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    noun : str
        What one input is, plural, for the help text (``"cutouts"``).
    partition_size : int, optional
        Default of ``--partition-size``; the option is left out when None
        (cryo-EM picks one micrograph per partition).
    """
    group = parser.add_argument_group("inputs and scaling out")
    group.add_argument("--catalog", metavar="TABLE", help=f"CSV, Parquet or FITS table listing {noun}")
    group.add_argument("--path-column", default="file", help="catalogue column with the paths (default file)")
    if partition_size is not None:
        group.add_argument("--partition-size", type=int, default=partition_size,
                           help=f"{noun} per partition: the unit of resuming and of Dask tasks "
                                f"(default {partition_size})")
    group.add_argument("--read-threads", type=int, default=2, help="file-reading threads per process (default 2)")
    group.add_argument("--workers", type=int, metavar="N", help="run on a local Dask cluster of N processes")
    group.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster")
