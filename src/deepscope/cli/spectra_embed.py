"""Deprecated alias of `deepscope spectra autoencoder embed`: the same options, the same result.

example (the same as `deepscope spectra autoencoder embed ...`):
  deepscope spectra embed --labels ../shared/data/spectra/miles/labels.csv --model runs/spectra_ae --out map.png
"""

from deepscope.cli.spectra_autoencoder import deprecated_alias

add_args, main = deprecated_alias("embed")
