"""Checkpoints as plain data, loaded with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values: the model's
registered name and keyword arguments, its ``state_dict``, the optimizer state,
the epoch, the run config, task metadata and the deepscope version. Whole
pickled modules are never stored, so checkpoints survive refactors and
PyTorch upgrades, and a checkpoint that carries pickled code is refused.
"""

import re
import warnings
from pathlib import Path

from deepscope import __version__
from deepscope.core.digest import sha256  # noqa: F401 - callers that hash a checkpoint import it from here
from deepscope.core.files import atomic_path
from deepscope.errors import ModelError, first_line

CHECKPOINT_NAME = "last.pt"
BEST_NAME = "best.pt"


def save_checkpoint(path, model_name, model_kwargs, model, **fields):
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.pt`` file.
    model_name : str
        Registered model name.
    model_kwargs : dict
        Keyword arguments for :func:`deepscope.registry.create_model`.
    model : torch.nn.Module
        Model whose ``state_dict`` is saved (unwrapped from DDP by the caller).
    **fields
        Further plain-data entries (optimizer, epoch, config, meta ...).
    """
    import torch

    record = {
        "model": model_name,
        "model_kwargs": dict(model_kwargs),
        "state_dict": model.state_dict(),
        "version": __version__,
        **fields,
    }
    with atomic_path(path) as tmp:
        torch.save(record, tmp)


def resolve_checkpoint(path):
    """Find the checkpoint file for a run directory or ``.pt`` path.

    Parameters
    ----------
    path : str or Path
        A ``.pt`` file, or a run directory holding ``best.pt`` or ``last.pt``.

    Returns
    -------
    Path

    Raises
    ------
    ModelError
        If no checkpoint is found.
    """
    path = Path(path)
    if path.is_dir():
        for name in (BEST_NAME, CHECKPOINT_NAME):
            if (path / name).is_file():
                return path / name
        msg = f"{path}: no {BEST_NAME} or {CHECKPOINT_NAME} in this run directory"
        raise ModelError(msg)
    if not path.is_file():
        msg = f"{path}: no such model file or run directory"
        raise ModelError(msg)
    return path


def load_checkpoint(path):
    """Read a checkpoint safely (tensors and plain data only).

    Parameters
    ----------
    path : str or Path
        ``.pt`` file or run directory.

    Returns
    -------
    dict

    Raises
    ------
    ModelError
        If the file is not a deepscope checkpoint, is corrupt, or carries
        pickled code (refused by ``weights_only=True``).
    """
    import pickle

    import torch

    path = resolve_checkpoint(path)
    with open(path, "rb") as fh:
        is_zip = fh.read(4) == b"PK\x03\x04"
    if not is_zip:
        # torch.save has written zip archives since PyTorch 1.6; anything else
        # would go to the legacy unpickler, which we never want to reach.
        msg = f"{path}: not a readable checkpoint (not a PyTorch zip archive)"
        raise ModelError(msg)
    try:
        with warnings.catch_warnings():
            # torch warns about legacy storages on the way to refusing them;
            # the refusal below is the message users need.
            warnings.simplefilter("ignore", UserWarning)
            record = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = found.group(1) if found else "a disallowed object"
        msg = f"{path}: refused to load checkpoint: it carries pickled code or objects ({what})"
        raise ModelError(msg) from None
    except Exception as exc:  # noqa: BLE001 - corrupt zip, truncated file ...
        # torch's messages run over several sentences and lines; the first says it
        reason = first_line(exc).split(". ")[0]
        msg = f"{path}: not a readable checkpoint: corrupt or truncated ({reason})"
        raise ModelError(msg) from None
    if not isinstance(record, dict) or not {"model", "state_dict"} <= set(record):
        msg = f"{path}: not a deepscope checkpoint (no model name or state_dict)"
        raise ModelError(msg)
    return record


def model_from_checkpoint(record):
    """Rebuild the model of a checkpoint, in eval mode.

    Parameters
    ----------
    record : dict
        As returned by :func:`load_checkpoint`.

    Returns
    -------
    torch.nn.Module
    """
    from deepscope.registry import create_model

    model = create_model(record["model"], **record.get("model_kwargs", {}))
    try:
        model.load_state_dict(record["state_dict"])
    except RuntimeError as exc:
        msg = f"checkpoint weights do not fit model {record['model']!r}: {first_line(exc)}"
        raise ModelError(msg) from None
    return model.eval()


def update_checkpoint_meta(path, **meta):
    """Add or replace entries of a checkpoint's ``meta`` dict, atomically.

    Parameters
    ----------
    path : str or Path
        Checkpoint file.
    **meta
        Entries to set (plain data).
    """
    import torch

    record = load_checkpoint(path)
    record["meta"] = {**record.get("meta", {}), **meta}
    with atomic_path(path) as tmp:
        torch.save(record, tmp)
