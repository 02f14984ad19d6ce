"""Errors and warnings that deepscope raises on purpose.

Every error a user can cause (a bad file, a missing column, an unwritable
path) is a :class:`DeepscopeError`; the command line prints its message as one
line and exits non-zero without a traceback. Anything else is a bug.
"""


class DeepscopeError(Exception):
    """Base class of every error deepscope reports to users."""


class FormatError(DeepscopeError):
    """A file could not be read: wrong format, truncated, empty or corrupt."""


class InputError(DeepscopeError):
    """Arguments or tables are inconsistent (missing column, unknown name ...)."""


class OutputError(DeepscopeError):
    """An output path cannot be written."""


class ModelError(DeepscopeError):
    """A model or checkpoint is unknown, corrupt or unsafe to load."""


class BatchError(DeepscopeError):
    """Some inputs of a batch failed; good results were still written.

    Parameters
    ----------
    failures : list of tuple of (str, str)
        ``(path, reason)`` for every input that failed.
    """

    def __init__(self, failures):
        self.failures = list(failures)
        lines = [f"{len(self.failures)} input(s) failed:"]
        # Readers' messages start with the file already; it is said once per line.
        lines += [f"  {path}: {reason.removeprefix(f'{path}: ')}" for path, reason in self.failures]
        super().__init__("\n".join(lines))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type when it has none.

    Third-party errors (astropy, pyarrow, torch) often run over several lines;
    a user sees one.

    Examples
    --------
    >>> first_line(ValueError("bad header\\nmore detail"))
    'bad header'
    >>> first_line(KeyError())
    'KeyError'
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class NoPicksWarning(UserWarning):
    """A micrograph produced no particle picks."""


class DiameterWarning(UserWarning):
    """A given particle diameter is far from the one the micrographs show."""
