"""Run configuration: a dataclass with commented defaults, YAML, CLI overrides.

The resolved configuration of every run is written into its run directory
(``config.yaml``) together with the deepscope version, the time and the
command line, so any result can be traced back to how it was made.
"""

import dataclasses
import datetime
import sys
from dataclasses import dataclass, field
from pathlib import Path

from deepscope import __version__
from deepscope.core.distributed import process_info
from deepscope.errors import InputError, OutputError


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run; every domain uses this shape."""

    model: str = ""  # registered model name; each domain picks its default
    model_kwargs: dict = field(default_factory=dict)  # passed to create_model
    epochs: int = 30  # upper bound; early stopping usually ends sooner
    batch_size: int = 64  # per process; DDP multiplies by the world size
    lr: float = 2e-3  # AdamW learning rate, cosine-decayed over `epochs`
    weight_decay: float = 1e-4  # AdamW weight decay
    patience: int = 8  # epochs without validation improvement before stopping
    val_fraction: float = 0.15  # share of the training rows held out for validation
    seed: int = 0  # base seed; each DDP rank adds its rank
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"; cuda fails loudly if absent
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default (all cores)
    num_workers: int = 0  # DataLoader worker processes (seeded per worker)


def load_yaml_config(path):
    """Read a YAML mapping of :class:`TrainConfig` fields.

    Parameters
    ----------
    path : str or Path
        YAML file.

    Returns
    -------
    dict
        Field values found in the file.

    Raises
    ------
    InputError
        If the file is unreadable or names unknown fields.
    """
    import yaml

    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{path}: cannot read config: {exc}"
        raise InputError(msg) from None
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        msg = f"{path}: unknown config fields {unknown}; known: {sorted(known)}"
        raise InputError(msg)
    return values


def resolve_config(defaults, yaml_path=None, **overrides):
    """Merge defaults, an optional YAML file and CLI overrides (in that order).

    Parameters
    ----------
    defaults : TrainConfig
        Domain defaults.
    yaml_path : str or Path, optional
        YAML file with field values.
    **overrides
        Field values from the command line; ``None`` means "not given".

    Returns
    -------
    TrainConfig
    """
    values = {}
    if yaml_path is not None:
        values.update(load_yaml_config(yaml_path))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return dataclasses.replace(defaults, **values)


def prepare_run_dir(run_dir, config, extra=None):
    """Create a run directory, lock it for this process, and write ``config.yaml`` into it.

    The lock (``_lock.json``, see :mod:`deepscope.core.lock`) is held until
    the process ends or the command returns: a second training into the
    same directory is refused instead of interleaving checkpoints.

    Parameters
    ----------
    run_dir : str or Path
        Directory to create (may exist, e.g. when resuming).
    config : TrainConfig
        Resolved configuration.
    extra : dict, optional
        Task settings to record beside the config (data paths, target ...).

    Returns
    -------
    Path
        The run directory.

    Raises
    ------
    OutputError
        If the directory cannot be created or written, or another run is
        training into it.
    """
    import yaml

    from deepscope.core.lock import lock_output

    run_dir = Path(run_dir)
    if not process_info().is_primary:
        return run_dir  # under torchrun only rank 0 writes
    record = {
        "deepscope_version": __version__,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "config": dataclasses.asdict(config),
        "task": extra or {},
    }
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"{run_dir}: cannot write run directory: {exc.strerror or exc}"
        raise OutputError(msg) from None
    # Re-entrant: a command that trains twice (spectra: autoencoder, then
    # classifier) prepares nested or the same directories in one process.
    lock_output(run_dir, f"run directory {run_dir}", reentrant=True)
    try:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    except OSError as exc:
        msg = f"{run_dir}: cannot write run directory: {exc.strerror or exc}"
        raise OutputError(msg) from None
    return run_dir
