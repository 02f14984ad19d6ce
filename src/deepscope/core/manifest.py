"""The manifest: one table that every domain's readers produce.

Columns: ``id`` (unique string), ``path`` (absolute file path), ``split``
(``train``/``val``/``test`` or empty) and any number of target columns.
Inference, Dask batches and reports all consume this shape.
"""

from pathlib import Path

from deepscope.core.files import read_table
from deepscope.errors import InputError

MANIFEST_COLUMNS = ("id", "path", "split")


def manifest_from_labels(labels_path, file_column="file", required=(), split_column="split"):
    """Build a manifest from a labels table whose paths are relative to it.

    Parameters
    ----------
    labels_path : str or Path
        CSV, Parquet or FITS table.
    file_column : str
        Column with file paths, relative to the table's folder (or absolute).
    required : iterable of str
        Target columns that must be present.
    split_column : str
        Optional split column, copied into ``split`` when present.

    Returns
    -------
    pandas.DataFrame
        The labels table with ``id``, ``path`` and ``split`` added.

    Raises
    ------
    InputError
        If a column is missing or the table is empty.
    """
    labels_path = Path(labels_path)
    table = read_table(labels_path, required=[file_column, *required])
    if table.empty:
        msg = f"{labels_path}: the table has no rows"
        raise InputError(msg)
    base = labels_path.resolve().parent
    table = table.copy()
    table["path"] = [str(p if Path(p).is_absolute() else base / p) for p in table[file_column].astype(str)]
    table["id"] = table[file_column].astype(str)
    table["split"] = table[split_column].fillna("").astype(str) if split_column in table else ""
    return table


def split_train_val(manifest, val_fraction, seed, stratify=None):
    """Split the non-test rows of a manifest into train and validation rows.

    Rows whose ``split`` is ``test`` are never used. Rows already marked
    ``val`` stay validation rows; otherwise a seeded, optionally stratified
    random ``val_fraction`` of the remaining rows is drawn.

    Parameters
    ----------
    manifest : pandas.DataFrame
    val_fraction : float
    seed : int
    stratify : str, optional
        Column whose class balance the split keeps.

    Returns
    -------
    train, val : pandas.DataFrame
    """
    from sklearn.model_selection import train_test_split

    usable = manifest[manifest["split"] != "test"]
    if (usable["split"] == "val").any():
        return usable[usable["split"] != "val"], usable[usable["split"] == "val"]
    if len(usable) < 2:
        msg = "need at least two labelled rows outside the test split to train"
        raise InputError(msg)
    labels = usable[stratify] if stratify else None
    train, val = train_test_split(usable, test_size=val_fraction, random_state=seed, stratify=labels)
    return train, val
