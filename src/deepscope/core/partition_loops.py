"""The two loops that run numbered partitions: in process, or on a Dask cluster.

Shared by every batch path (the file streams of :mod:`deepscope.core.inference`
and the bulk-table slices of :mod:`deepscope.spectra.table_predict`), which
differ only in how a partition is loaded, predicted and stored: they pass
those steps in as callables. A *job* is a tuple whose first item is the
partition's index; the rest is the caller's.
"""

from collections import deque
from concurrent.futures import ThreadPoolExecutor

from deepscope.errors import DeepscopeError


def run_jobs_locally(todo, load, finish, prefetch: int = 1) -> int:
    """Run partitions in process, loading the next ones on threads while this one is finished.

    Parameters
    ----------
    todo : iterator of tuple
        The partitions to compute, each a tuple whose first item is its index.
    load : callable
        ``load(job)``: read and decode a partition's inputs (runs on a thread).
    finish : callable
        ``finish(job, loaded)``: predict on what ``load`` returned and store
        the result (runs on the calling thread, one partition at a time, in
        the order of ``todo``).
    prefetch : int
        Partitions loading at once beside the one being finished: 1 where
        ``load`` spreads one partition over the cores itself, more where
        each load keeps one reader process busy.

    Returns
    -------
    int
        Number of partitions computed.

    Examples
    --------
    >>> seen = []
    >>> run_jobs_locally(iter([(0, "a"), (1, "b"), (2, "c")]), lambda job: job[1].upper(),
    ...                  lambda job, loaded: seen.append(loaded), prefetch=2)
    3
    >>> seen
    ['A', 'B', 'C']
    """
    count, depth = 0, max(1, prefetch)
    loading = deque()
    with ThreadPoolExecutor(max_workers=depth) as prefetcher:

        def start_next():
            job = next(todo, None)
            if job is not None:
                loading.append((job, prefetcher.submit(load, job)))

        for _ in range(depth):
            start_next()
        while loading:
            job, loaded = loading.popleft()
            # Decode the next partitions while the network runs on this one.
            start_next()
            finish(job, loaded.result())
            count += 1
    return count


def run_jobs_on_dask(client, predictor, todo, submit, finish) -> int:
    """Run partitions on a Dask cluster, a bounded number in flight.

    Parameters
    ----------
    client : distributed.Client
    predictor : object
        Scattered once to every worker.
    todo : iterator of tuple
        The partitions to compute, each a tuple whose first item is its index.
    submit : callable
        ``submit(remote_predictor, job)``: submit one partition's task and
        return its future.
    finish : callable
        ``finish(job, result)``: store a finished task's result.

    Returns
    -------
    int
        Number of partitions computed.

    Raises
    ------
    DeepscopeError
        If a task or worker fails (the partitions finished so far are kept).
    """
    from distributed import as_completed

    # Scattered once with broadcast: each worker holds one copy of the
    # model, instead of deserialising it again with every task.
    remote = client.scatter(predictor, broadcast=True, hash=False)
    # Two partitions per worker in flight: one running, one queued; more
    # would only hold decoded inputs in memory.
    in_flight = 2 * max(1, len(client.nthreads()))
    running = as_completed()
    jobs = {}

    def submit_next():
        job = next(todo, None)
        if job is not None:
            future = submit(remote, job)
            jobs[future.key] = job
            running.add(future)

    for _ in range(in_flight):
        submit_next()
    count = 0
    for future in running:
        job = jobs.pop(future.key)
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker or task is reported, finished parts stay
            msg = (f"partition {job[0]} failed on the Dask cluster ({type(exc).__name__}: {exc}); "
                   "finished partitions are kept: rerun the same command to resume")
            raise DeepscopeError(msg) from None
        finish(job, result)
        future.release()
        count += 1
        submit_next()
    return count
