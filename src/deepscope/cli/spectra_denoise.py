"""Deprecated alias of `deepscope spectra autoencoder denoise`: the same options, the same result.

example (the same as `deepscope spectra autoencoder denoise ...`):
  deepscope spectra denoise ../shared/data/spectra/miles --model runs/spectra_ae --snr 10 --out d.csv
"""

from deepscope.cli.spectra_autoencoder import deprecated_alias

add_args, main = deprecated_alias("denoise")
