"""The Dask cluster a batch command runs on: none, a local one, or an existing one.

``--workers N`` starts a :class:`distributed.LocalCluster` of N worker
processes on this machine (loopback only, no dashboard) and shuts it down
afterwards; ``--scheduler ADDRESS`` connects to a cluster the user already
runs (``dask scheduler`` / ``dask worker``, dask-jobqueue on a batch system,
Kubernetes ...). Its workers need deepscope installed and the input files
at the same paths.
"""

import contextlib
import logging
import os

from deepscope.errors import InputError

log = logging.getLogger(__name__)

# The scheduler's HTTP server (metrics) on loopback and a free port: with None, Dask tries
# 8787 and warns when another cluster on the machine holds it.
LOOPBACK_ANY_PORT = "127.0.0.1:0"
# Seconds to wait for an existing scheduler before saying it is unreachable.
SCHEDULER_TIMEOUT_S = 10


@contextlib.contextmanager
def dask_client(workers=None, scheduler=None):
    """A Dask client for the requested cluster, or None to run in process.

    Parameters
    ----------
    workers : int, optional
        Start a local cluster of this many worker processes, sharing the cores.
    scheduler : str, optional
        Address of an existing scheduler instead, e.g. ``tcp://10.0.0.5:8786``.

    Raises
    ------
    InputError
        If the scheduler cannot be reached.
    """
    if workers is None and scheduler is None:
        yield None
        return
    from distributed import Client, LocalCluster

    # Dask's own start/stop chatter is not the user's business; its warnings are.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            msg = f"cannot reach the Dask scheduler at {scheduler}: {exc}"
            raise InputError(msg) from None
        with client:
            log.info("Dask cluster at %s: %d worker(s)", scheduler, len(client.nthreads()))
            yield client
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, host="127.0.0.1",
                           dashboard_address=LOOPBACK_ANY_PORT, silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        log.info("local Dask cluster: %d worker(s) x %d thread(s)", workers, threads)
        yield client
