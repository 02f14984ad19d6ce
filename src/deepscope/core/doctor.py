"""What this installation can do: versions, threads, accelerators, Dask, shipped models.

Each function returns plain data (so the report can be printed as a table or
as JSON for a bug report); :func:`diagnose` gathers them and lists the
problems that should make ``deepscope doctor`` fail.
"""

import dataclasses
import json
import logging
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from deepscope import __version__
from deepscope.core.cluster import LOOPBACK_ANY_PORT
from deepscope.core.digest import sha256
from deepscope.errors import first_line
from deepscope.registry import SUMS_NAME, list_weights, weights_dir

# Distribution names, in the order the table shows them.
PACKAGES = ("torch", "onnxruntime", "numpy", "astropy", "dask", "distributed", "mrcfile", "starfile", "gemmi",
            "pandas", "pyarrow")


@dataclasses.dataclass
class Diagnosis:
    """The doctor's findings.

    Attributes
    ----------
    sections : dict
        Section title -> {item: value}; values are plain data (str, int,
        bool, None, or a dict for one shipped model).
    problems : list of str
        One line per failed check; empty when all is well.
    """

    sections: dict
    problems: list


def versions():
    """Versions of deepscope, Python, the platform and the libraries it uses.

    Returns
    -------
    dict
        Name -> version string, ``"not installed"`` for a missing library.
    """
    found = {"deepscope": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        # Package metadata, not an import: asking must stay cheap and must
        # not fail on a library that is broken on import.
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def threads():
    """CPU threads torch will use and the cores this process may run on.

    Returns
    -------
    dict
    """
    import torch

    found = {
        "torch intra-op threads": torch.get_num_threads(),
        "torch inter-op threads": torch.get_num_interop_threads(),
        "os.cpu_count": os.cpu_count(),
        # Containers and batch schedulers often allow fewer cores than the
        # machine has; torch's defaults do not always notice.
        "CPU affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if name in os.environ:
            found[name] = os.environ[name]
    return found


def accelerators():
    """CUDA, cuDNN and Apple MPS as torch sees them.

    Returns
    -------
    dict
    """
    import torch

    cuda = torch.cuda.is_available()
    count = torch.cuda.device_count() if cuda else 0
    mps = getattr(torch.backends, "mps", None)
    return {
        "CUDA available": cuda,
        "CUDA devices": count,
        "CUDA device names": ", ".join(torch.cuda.get_device_name(i) for i in range(count)) or None,
        "cuDNN version": torch.backends.cudnn.version() if cuda else None,
        "MPS available": bool(mps is not None and mps.is_available()),
    }


def distributed_backends():
    """Which torch.distributed backends this torch build offers.

    Returns
    -------
    dict
    """
    import torch.distributed as dist

    available = dist.is_available()
    return {
        "torch.distributed": available,
        "gloo (CPU)": available and dist.is_gloo_available(),
        "nccl (CUDA)": available and dist.is_nccl_available(),
    }


def dask_status(scheduler=None, timeout=5.0, check_local=False):
    """Whether Dask can be used, and what a given scheduler offers.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) to connect to.
    timeout : float
        Seconds to wait for the scheduler.
    check_local : bool
        Also start (and stop) a one-worker in-process ``LocalCluster``;
        this takes a few seconds, so it is not done by default.

    Returns
    -------
    found : dict
    problem : str or None
        One line when the scheduler is unreachable.
    """
    try:
        import distributed
    except ImportError as exc:
        return {"importable": f"no ({exc})"}, None
    found = {"importable": True}
    # distributed logs every connection and worker start at INFO; the
    # doctor's table says what matters.
    dask_log = logging.getLogger("distributed")
    level = dask_log.level
    dask_log.setLevel(logging.WARNING)
    try:
        found.update(_dask_checks(distributed, scheduler, timeout, check_local))
    finally:
        dask_log.setLevel(level)
    state = found.get(f"scheduler {scheduler}", "")
    problem = f"Dask scheduler {scheduler} {state}" if state.startswith("unreachable") else None
    return found, problem


def _dask_checks(distributed, scheduler, timeout, check_local):
    """The scheduler and LocalCluster checks of :func:`dask_status`."""
    found = {}
    if scheduler is not None:
        try:
            with distributed.Client(scheduler, timeout=f"{timeout}s", set_as_default=False) as client:
                workers = client.scheduler_info()["workers"]
            found[f"scheduler {scheduler}"] = "reachable"
            found["workers"] = len(workers)
            found["threads"] = sum(w.get("nthreads", 0) for w in workers.values())
        except (OSError, TimeoutError, ValueError) as exc:
            found[f"scheduler {scheduler}"] = f"unreachable: {first_line(exc)}"
    if check_local:
        try:
            with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                          dashboard_address=LOOPBACK_ANY_PORT) as cluster:
                found["LocalCluster"] = f"ok ({len(cluster.workers)} worker)"
        except Exception as exc:  # noqa: BLE001 - report whatever stops a cluster, do not crash
            found["LocalCluster"] = f"cannot start: {type(exc).__name__}: {exc}"
    return found


def shipped_models(folder=None):
    """Check the shipped weights and their ONNX exports against their recorded SHA-256 sums.

    The files come from the shipped table (:func:`deepscope.registry.list_weights`),
    the same table that ``--model NAME`` and ``deepscope models`` read; no
    checkpoint is loaded, so this needs no torch.

    Parameters
    ----------
    folder : str or Path, optional
        Weights directory; the package's own by default.

    Returns
    -------
    dict
        File name -> ``{"status", "size", "model"}``; status is ``ok``,
        ``MISMATCH``, ``missing`` (in the table or the sums but absent) or
        ``unlisted`` (present but without a recorded sum); model is the
        shipped name and its network, or for an ONNX export the shipped name
        it was made from, or ``unregistered`` for a file the table lacks.
    """
    folder = Path(folder) if folder is not None else weights_dir()
    sums_path = folder / SUMS_NAME
    sums = json.loads(sums_path.read_text()) if sums_path.is_file() else {}
    labels = {}
    for entry in list_weights():
        labels[entry.file] = f"{entry.name} ({entry.arch})"
        for engine in entry.exports:
            kind = "ONNX export, int8" if engine == "onnx-int8" else "ONNX export"
            labels[entry.export_path(engine).name] = f"{entry.name} ({kind})"
        for part in entry.part_exports:
            labels[entry.part_export_path(part).name] = f"{entry.name} (ONNX export of its {part} network)"
    present = {p.name for p in folder.glob("*.pt")} | {p.name for p in folder.glob("*.onnx")}
    found = {}
    for name in sorted(set(labels) | set(sums) | present):
        path = folder / name
        label = labels.get(name, "unregistered")
        if not path.is_file():
            found[name] = {"status": "missing", "size": None, "model": label}
            continue
        if name not in sums:
            status = "unlisted"
        else:
            status = "ok" if sha256(path) == sums[name] else "MISMATCH"
        found[name] = {"status": status, "size": path.stat().st_size, "model": label}
    return found


def diagnose(scheduler=None, timeout=5.0, check_dask_local=False, weights_dir=None):
    """Run every check.

    Parameters
    ----------
    scheduler : str, optional
        Dask scheduler address to try.
    timeout : float
        Seconds to wait for it.
    check_dask_local : bool
        Also start a small in-process Dask cluster.
    weights_dir : str or Path, optional
        Weights directory to verify; the package's own by default.

    Returns
    -------
    Diagnosis
    """
    dask, dask_problem = dask_status(scheduler, timeout, check_dask_local)
    models = shipped_models(weights_dir)
    problems = [f"shipped model {name}: {info['status']} (reinstall deepscope)"
                for name, info in models.items() if info["status"] in ("MISMATCH", "missing")]
    if dask_problem:
        problems.append(dask_problem)
    sections = {
        "versions": versions(),
        "threads": threads(),
        "accelerators": accelerators(),
        "torch.distributed": distributed_backends(),
        "dask": dask,
        "shipped models": models,
    }
    return Diagnosis(sections, problems)


def _cell(value):
    if isinstance(value, dict):  # one shipped model
        size = "-" if value["size"] is None else f"{value['size'] / 1e6:.2f} MB"
        return f"{value['status']:<9} {size:>9}  {value['model'] or '-'}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)


def format_table(diagnosis):
    """The diagnosis as a readable plain-text table.

    Parameters
    ----------
    diagnosis : Diagnosis

    Returns
    -------
    str
    """
    width = max(len(key) for items in diagnosis.sections.values() for key in items)
    lines = []
    for title, items in diagnosis.sections.items():
        lines.append(f"{title}:")
        lines.extend(f"  {key:<{width}}  {_cell(value)}" for key, value in items.items())
    lines.append("problems:" if diagnosis.problems else "all checks passed")
    lines.extend(f"  {problem}" for problem in diagnosis.problems)
    return "\n".join(lines)
