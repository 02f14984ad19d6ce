"""Small real samples that ship inside the package, for the demo and offline tests."""

from pathlib import Path


def sample_dir(*parts):
    """Path of a bundled sample folder, e.g. ``sample_dir("galaxy", "bars")``.

    Parameters
    ----------
    *parts : str
        Sub-folders under ``deepscope/samples``.

    Returns
    -------
    Path
    """
    return Path(__file__).resolve().parent.joinpath("samples", *parts)
