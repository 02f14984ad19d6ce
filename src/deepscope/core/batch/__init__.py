"""The one batch runner behind ``galaxy predict``, ``spectra predict`` and ``cryoem pick``.

:mod:`~.sources` cut inputs into partitions, :mod:`~.reading` reads them (on
threads or in reader processes), :mod:`~.runner` has a predictor answer them
in process or on Dask, :mod:`~.store` keeps the finished ones for resuming;
:mod:`~.options` is how a job reads and where it runs.
"""
