"""Spectra as stored -> :class:`~deepscope.spectra.io.spectrum.Spectrum` records (no torch here).

``files`` reads one spectrum file of any supported format (text, FITS
images and tables, SDSS spec files, the libraries' own layouts) and builds
the labelled manifest; ``fits`` holds the FITS readers it dispatches to;
``tables`` and ``table_rows`` read bulk tables (Parquet, FITS, HDF5) row
slice by row slice; ``spectrum`` is the record every reader returns.
"""
