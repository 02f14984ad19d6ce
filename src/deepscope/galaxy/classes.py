"""The classes of a galaxy task: their order, their codes and the names people read.

A task is one categorical column of a labels table (``barred`` with values
0/1, or ``morphology`` with ``elliptical``/``spiral``). Its classes are
sorted, so that the positive class of a binary task (``1``, ``spiral``) is
class index 1. Numeric codes are what tables hold; reports and figures say
``barred``/``unbarred`` instead of ``1``/``0``.
"""

from collections.abc import Iterable

import numpy as np

from deepscope.errors import InputError

# Names a person reads for numeric class codes, per target column.
_READABLE = {"barred": {"0": "unbarred", "1": "barred"}}
# Output column of the positive-class probability, where one is fixed by name.
_PROBABILITY_COLUMNS = {("barred", "1"): "p_bar"}


def class_names_of(values: Iterable) -> list[str]:
    """Sorted class names of a label column, as strings.

    Examples
    --------
    >>> class_names_of([1, 0, 1])
    ['0', '1']
    """
    return sorted({str(v) for v in values})


def encode_labels(values: Iterable, class_names: list[str]) -> np.ndarray:
    """Class indices (int64) into ``class_names`` of labels as users wrote them (``1``, ``"1"``, ``"spiral"``).

    Raises
    ------
    deepscope.errors.InputError
        If a value is not one of ``class_names``.

    Examples
    --------
    >>> encode_labels([1, 0, "1"], ["0", "1"]).tolist()
    [1, 0, 1]
    """
    lookup = {name: i for i, name in enumerate(class_names)}
    try:
        return np.array([lookup[str(v)] for v in values], dtype=np.int64)
    except KeyError as exc:
        msg = f"label {exc.args[0]!r} is not one of the model's classes {class_names}"
        raise InputError(msg) from None


def label_value(class_name: str) -> int | str:
    """A class as users wrote it in their tables: an int for numeric classes, else the name.

    Examples
    --------
    >>> label_value("1"), label_value("spiral")
    (1, 'spiral')
    """
    return int(class_name) if class_name.lstrip("-").isdigit() else class_name


def readable_names(target: str, class_names: list[str]) -> list[str]:
    """The names a person reads for the classes of a label column (``barred`` for ``1`` of ``barred``).

    Examples
    --------
    >>> readable_names("barred", ["0", "1"])
    ['unbarred', 'barred']
    >>> readable_names("morphology", ["elliptical", "spiral"])
    ['elliptical', 'spiral']
    """
    names = _READABLE.get(target, {})
    return [names.get(c, c) for c in class_names]


def probability_column(target: str, class_names: list[str]) -> str:
    """Name of the output column holding the positive-class probability of a binary task.

    Examples
    --------
    >>> probability_column("barred", ["0", "1"]), probability_column("morphology", ["elliptical", "spiral"])
    ('p_bar', 'p_spiral')
    """
    positive = class_names[-1]
    return _PROBABILITY_COLUMNS.get((target, positive), f"p_{positive}")
