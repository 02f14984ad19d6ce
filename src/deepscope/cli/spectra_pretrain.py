"""Deprecated alias of `deepscope spectra autoencoder pretrain`: the same options, the same result.

example (the same as `deepscope spectra autoencoder pretrain ...`):
  deepscope spectra pretrain ../shared/data/spectra/stelib --out runs/spectra_ae --epochs 30
"""

from deepscope.cli.spectra_autoencoder import deprecated_alias

add_args, main = deprecated_alias("pretrain")
