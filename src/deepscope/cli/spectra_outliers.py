"""Deprecated alias of `deepscope spectra autoencoder outliers`: the same options, the same result.

example (the same as `deepscope spectra autoencoder outliers ...`):
  deepscope spectra outliers ../shared/data/spectra/stelib --model runs/spectra_ae --inject 9 --out odd.csv
"""

from deepscope.cli.spectra_autoencoder import deprecated_alias

add_args, main = deprecated_alias("outliers")
