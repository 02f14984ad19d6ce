"""Deprecated alias of `galaxy explain IMAGE --layers`: feature maps of every convolutional layer.

Same options as before; see `deepscope galaxy explain --help`.

example:
  deepscope galaxy layers ../shared/data/galaxy/sdss_gz2_bars/images/J000726.72-004221.6.jpeg --out layers
"""

from deepscope.cli import galaxy_explain


def add_args(parser):
    galaxy_explain.add_explain_args(parser, "layers")


main = galaxy_explain.main
