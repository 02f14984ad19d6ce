"""Predict whether galaxies are barred (or another trained target).

INPUT are cutout files, directories (searched for JPEG, PNG and FITS) or
uncompressed .tar shards of cutouts; --catalog adds the inputs listed in a
table. Writes one row per input: `file`, `p_bar` (probability of a bar),
`barred` (1 when p_bar >= threshold, else 0) and `threshold` (the decision
threshold of the model, tuned for balanced accuracy on its validation split:
0.674 for the shipped galaxy_bars). With --model galaxy_morphology the
columns are `p_spiral`, `morphology` (spiral when p_spiral >= threshold
0.584, else elliptical) and `threshold`. A model that records the apparent
sizes it was trained on (galaxy_bars, and every model galaxy train makes)
adds `scale_flag`: `small` or `large` when the galaxy's apparent size in
the cutout lies outside that range, else empty. galaxy_bars sees every
cutout in its canonical orientation, so turning or mirroring a cutout does
not change its row. --model galaxy_bars_rescaled also zooms every cutout
to one apparent size first (by 0.6x to 1.6x), so that a field cut wider or
tighter changes fewer decisions, 16% slower; its scale_flag
reads the size after that zoom. galaxy_bars also measures the bars of the galaxies it
calls barred: `bar_length_arcsec` and `bar_pa_deg` (degrees
counter-clockwise from up, east of north for SDSS cutouts); empty for the
others. Bad files are listed on stderr and
the exit status is 1, but every good file still gets its row. A JPEG/PNG
cutout may have at most 2048 x 2048 pixels (checked from its header);
16-bit greyscale PNGs are scaled by the bit depth their values use.

With --catalog, the catalogue's own columns follow those columns in the
table (--no-keep-columns leaves them out); a catalogue column whose name
is taken, such as its own `file`, comes through as `catalog_<name>`. A
directory --out (Parquet parts) gets them with --keep-columns. Catalogue
rows with an empty path (rows `galaxy cutout` could not cut) are skipped,
with one warning counting them.

A killed run restarted with the same arguments resumes: finished partitions
are kept and not computed again. --out DIR (no .csv/.parquet suffix) writes
Parquet parts into DIR instead of one table, for survey-scale runs.
--workers N runs on a local Dask cluster, --scheduler ADDRESS on an existing
one; the results are the same as in process.

examples:
  deepscope galaxy predict ../shared/data/galaxy/sdss_gz2_bars/images --out pred.csv
  deepscope galaxy cutout sample.csv --frames frames/ --out cutouts/
  deepscope galaxy predict --catalog cutouts/cutouts.csv --out pred.csv
  deepscope galaxy predict --catalog survey.parquet --path-column cutout --out preds/ --workers 2
"""

import argparse

from deepscope.cli.options import add_batch_args, add_network_args, batch_options_from_args

# galaxy.predictor.PARTITION_SIZE, written out so that --help imports no numerical library.
PARTITION_SIZE = 1024
# galaxy.predictor.VIEW_COUNTS, written out for the same reason.
VIEW_COUNTS = (1, 2, 4, 8)


def add_augment_arg(parser):
    """``--augment N``: test-time views averaged, as galaxy predict and evaluate take it."""
    parser.add_argument("--augment", type=int, choices=VIEW_COUNTS, default=1,
                        help="views of each cutout averaged: rotations by 90 degrees (of its canonical view, for a "
                             "model that uses one), then their mirror images, at N times the network time "
                             "(default 1; docs/galaxy.md has what 4 gains)")


def add_args(parser):
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="cutout files, directories or .tar shards")
    parser.add_argument("--out", required=True, metavar="PRED.csv",
                        help="output table (.csv or .parquet), or a directory for Parquet parts (required)")
    add_network_args(parser, "galaxy")
    add_batch_args(parser, "cutouts", PARTITION_SIZE, batch_size=512)
    add_augment_arg(parser)
    parser.add_argument("--keep-columns", action=argparse.BooleanOptionalAction, default=None,
                        help="append the --catalog table's own columns to the predictions "
                             "(default: on with --catalog and a .csv/.parquet --out, off for a directory)")


def main(args):
    from deepscope.galaxy.predictor import predict_galaxies

    predict_galaxies(args.inputs, args.out, model=args.model, options=batch_options_from_args(args),
                     keep_columns=args.keep_columns, augment=args.augment)
