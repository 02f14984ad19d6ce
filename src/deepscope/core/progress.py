"""Progress bars on stderr that ``deepscope -q`` silences.

Every long loop draws its bar through :func:`progress_bar`, so one switch
(:func:`silence_progress_bars`, set by the command line's ``--quiet``) turns
them all off; logging levels cannot, because tqdm writes to stderr itself.
"""

_silenced = False


def silence_progress_bars(silenced=True):
    """Turn every later progress bar of this process off (or back on)."""
    global _silenced
    _silenced = bool(silenced)


def progress_bar(iterable=None, *, enabled=True, **kwargs):
    """A tqdm bar, off when ``enabled`` is false or bars are silenced.

    Parameters
    ----------
    iterable : iterable, optional
    enabled : bool
        The caller's own switch (its ``progress`` argument).
    **kwargs
        Passed to :class:`tqdm.tqdm` (``total``, ``desc``, ``unit`` ...).

    Returns
    -------
    tqdm.tqdm
    """
    from tqdm import tqdm

    return tqdm(iterable, disable=_silenced or not enabled, **kwargs)
