"""Cut colour cutouts of catalogued galaxies out of survey frames (FITS with a WCS).

CATALOG (CSV, FITS or Parquet) gives ra, dec (degrees) and, for
radius-scaled fields, a radius in arcsec (--radius-column). --frames gives FITS images with a
celestial WCS, one band each: the band comes from the FILTER card or an SDSS
name (frame-g-RRRRRR-C-FFFF.fits[.bz2]); fields may be many per band and
bands may be offset from each other. For each row the g, r and i frames
holding the galaxy are resampled onto one north-up grid (a galaxy across two
frames is mosaicked), shrunk to --pixels with anti-aliasing and rendered as an
asinh (Lupton) composite with i, r, g as red, green, blue: DIR/<name>.png.

The field is the one the model the cutouts will feed was trained on
(--model, default galaxy_bars: a fixed 19.2" field, 64 px at 0.3"/px, like
the shared SDSS cutouts); --fixed-arcsec gives another fixed field, and
--size-factor K or --radius-column scale it to each galaxy: K times its
radius (default 5 x deVRad_r, as in Abraham et al. 2018). Radius-scaled
cutouts show every galaxy at about the same size, which removes the
apparent-size cue the shipped models partly rely on: train a model on them
(galaxy train --field 5xdeVRad_r) before trusting its predictions.

DIR/cutouts.csv holds the catalogue's columns plus file (PNG, relative to the
table), status ('ok', 'edge: ...' or why the row has no cutout; file is then
empty) and field_arcsec; each PNG records its field too (a deepscope:field
text chunk), and galaxy predict warns when it differs from its model's.
'galaxy predict --catalog DIR/cutouts.csv' reads it and skips the rows
without a cutout (with a warning counting them). Predictions join back on
the file column (predict writes DIR/<name>.png). Bad frames or columns stop the command before
anything is written; rows off every frame or missing a band are listed on
stderr, the others are still written, and the exit status is 1.

examples:
  deepscope galaxy cutout sample.csv --frames frames/ --out cutouts/
  deepscope galaxy predict --catalog cutouts/cutouts.csv --out pred.csv
  deepscope galaxy cutout sample.csv --frames frames/ --out scaled/ --size-factor 5
"""

from deepscope.cli.options import add_model_arg

# galaxy.cutouts.make's defaults, written out so that --help imports no numerical library.
DEFAULT_SIZE_FACTOR = 5.0
DEFAULT_RADIUS_COLUMN = "deVRad_r"


def add_args(parser):
    parser.add_argument("catalog", metavar="CATALOG", help="catalogue table with ra, dec and a radius (.csv, .fits, .parquet)")
    parser.add_argument("--frames", nargs="+", required=True, metavar="PATH",
                        help="frame files or directories searched for FITS frames (.fits, .fits.gz, .fits.bz2, .fz)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory for <name>.png and cutouts.csv")
    add_model_arg(parser, "galaxy", "galaxy_bars: fixed 19.2 arcsec fields of 64 px")
    parser.add_argument("--fixed-arcsec", type=float, metavar="ARCSEC",
                        help="one field side in arcsec for every galaxy (default: the --model's field)")
    parser.add_argument("--size-factor", type=float, metavar="K",
                        help="scale the field to each galaxy: side = K x radius (default: the --model's field; "
                             f"with --radius-column alone, {DEFAULT_SIZE_FACTOR:g})")
    parser.add_argument("--radius-column",
                        help="galaxy radius column in arcsec for --size-factor; an array column takes an index, "
                             f"deVRad[2] (default: {DEFAULT_RADIUS_COLUMN}, the r-band de Vaucouleurs radius)")
    parser.add_argument("--pixels", type=int, metavar="N",
                        help="output side in pixels (default: the --model's, 64 for the shipped models)")
    parser.add_argument("--name-column",
                        help="column naming the output files (default: SDSS J-names from ra/dec, "
                             "like J000251.73+002545.6)")
    parser.add_argument("--ra-column", help="right ascension column, degrees (default: ra, RAJ2000 ..., any case)")
    parser.add_argument("--dec-column", help="declination column, degrees (default: dec, DEJ2000 ..., any case)")


def main(args):
    from pathlib import Path

    from deepscope.galaxy.cutouts.make import CutoutOptions, make_cutouts
    from deepscope.galaxy.field import model_field

    options = CutoutOptions.for_field(
        model_field(args.model), fixed_arcsec=args.fixed_arcsec, size_factor=args.size_factor,
        radius_column=args.radius_column, pixels=args.pixels, name_column=args.name_column,
        ra_column=args.ra_column, dec_column=args.dec_column,
    )
    result = make_cutouts(args.catalog, args.frames, args.out, options)
    print(f"cut out {len(result)} galaxies -> {Path(args.out) / 'cutouts.csv'}")
