"""Deprecated alias of `deepscope spectra autoencoder compress`: the same options, the same result.

example (the same as `deepscope spectra autoencoder compress ...`):
  deepscope spectra compress ../shared/data/spectra/miles --model runs/spectra_ae --out codes.parquet
"""

from deepscope.cli.spectra_autoencoder import deprecated_alias

add_args, main = deprecated_alias("compress")
