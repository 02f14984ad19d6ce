"""Deprecated alias of `deepscope spectra autoencoder pretrain`: the same options, the same result."""

from deepscope.cli.spectra_autoencoder import deprecated_alias

add_args, main = deprecated_alias("pretrain")
