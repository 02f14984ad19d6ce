"""The two loops that run numbered partitions: in process, or on a Dask cluster.

Shared by every batch path (the file streams of :mod:`deepscope.core.inference`
and the bulk-table slices of :mod:`deepscope.spectra.table_predict`), which
differ only in how a partition is loaded, predicted and stored: they pass
those steps in as callables. A *job* is a tuple whose first item is the
partition's index; the rest is the caller's.
"""

from concurrent.futures import ThreadPoolExecutor

from deepscope.errors import DeepscopeError


def run_jobs_locally(todo, load, finish) -> int:
    """Run partitions in process, loading the next one on a thread while this one is finished.

    Parameters
    ----------
    todo : iterator of tuple
        The partitions to compute, each a tuple whose first item is its index.
    load : callable
        ``load(job)``: read and decode a partition's inputs (runs on a thread).
    finish : callable
        ``finish(job, loaded)``: predict on what ``load`` returned and store
        the result (runs on the calling thread, one partition at a time).

    Returns
    -------
    int
        Number of partitions computed.

    Examples
    --------
    >>> seen = []
    >>> run_jobs_locally(iter([(0, "a"), (1, "b")]), lambda job: job[1].upper(),
    ...                  lambda job, loaded: seen.append(loaded))
    2
    >>> seen
    ['A', 'B']
    """
    count = 0
    with ThreadPoolExecutor(max_workers=1) as prefetcher:

        def start(job):
            return None if job is None else (job, prefetcher.submit(load, job))

        current = start(next(todo, None))
        while current is not None:
            job, loading = current
            # Decode the next partition while the network runs on this one.
            current = start(next(todo, None))
            finish(job, loading.result())
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
