"""Deprecated alias of `galaxy explain IMAGE --occlusion`: p_bar as a blurring patch slides over the cutout.

Same options as before; see `deepscope galaxy explain --help`.

example:
  deepscope galaxy occlusion ../shared/data/galaxy/sdss_gz2_bars/images/J000726.72-004221.6.jpeg --out occ.png
"""

from deepscope.cli import galaxy_explain


def add_args(parser):
    galaxy_explain.add_explain_args(parser, "occlusion")


main = galaxy_explain.main
