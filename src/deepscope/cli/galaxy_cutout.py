"""Cut colour cutouts of catalogued galaxies out of survey frames (FITS with a WCS).

CATALOG (CSV, FITS or Parquet) gives ra, dec (degrees) and a radius in arcsec
(--radius-column, default deVRad_r). --frames gives FITS images with a
celestial WCS, one band each: the band comes from the FILTER card or an SDSS
name (frame-g-RRRRRR-C-FFFF.fits[.bz2]); fields may be many per band and
bands may be offset from each other. For each row the g, r and i frames
holding the galaxy are resampled onto one north-up grid (a galaxy across two
frames is mosaicked), shrunk to --pixels with anti-aliasing and rendered as an
asinh (Lupton) composite with i, r, g as red, green, blue: DIR/<name>.png.

The field is --size-factor times the radius (default 5: the paper's cutouts
scale with deVRad_r, and 5 x the ~4" median deVRad_r of a bright SDSS sample
gives about 19.2"), or --fixed-arcsec for every galaxy. The shipped models
were trained on fixed 19.2" fields (64 px at 0.3"/px): to predict with them use
--fixed-arcsec 19.2. Radius-scaled cutouts show every galaxy at about the same
size, which removes the apparent-size cue those models partly rely on; train a
model on them before trusting its predictions.

DIR/cutouts.csv holds the catalogue's columns plus file (PNG, relative to the
table), status ('ok', 'edge: ...' or why the row has no cutout; file is then
empty) and field_arcsec. 'galaxy predict --catalog DIR/cutouts.csv' reads it;
rows without a cutout are reported there as failed inputs, so keep only rows
with a file to predict cleanly. Predictions join back on the file column
(predict writes DIR/<name>.png). Bad frames or columns stop the command before
anything is written; rows off every frame or missing a band are listed on
stderr, the others are still written, and the exit status is 1.

examples:
  deepscope galaxy cutout sample.csv --frames frames/ --out cutouts/
  deepscope galaxy cutout sample.csv --frames frames/ --out cutouts19/ --fixed-arcsec 19.2
  deepscope galaxy predict --catalog cutouts19/cutouts.csv --out pred.csv
"""

# galaxy.cutout's defaults, written out so that --help imports no numerical library.
DEFAULT_SIZE_FACTOR = 5.0
DEFAULT_PIXELS = 64
DEFAULT_RADIUS_COLUMN = "deVRad_r"


def add_args(parser):
    parser.add_argument("catalog", metavar="CATALOG", help="catalogue table with ra, dec and a radius (.csv, .fits, .parquet)")
    parser.add_argument("--frames", nargs="+", required=True, metavar="PATH",
                        help="frame files or directories searched for FITS frames (.fits, .fits.gz, .fits.bz2, .fz)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory for <name>.png and cutouts.csv")
    parser.add_argument("--radius-column", default=DEFAULT_RADIUS_COLUMN,
                        help="galaxy radius column in arcsec; an array column takes an index, deVRad[2] "
                             f"(default: {DEFAULT_RADIUS_COLUMN}, the r-band de Vaucouleurs radius)")
    parser.add_argument("--size-factor", type=float, default=DEFAULT_SIZE_FACTOR, metavar="K",
                        help=f"field side = K x radius (default: {DEFAULT_SIZE_FACTOR:g}, about 19.2 arcsec for "
                             "a median bright SDSS galaxy with deVRad_r ~ 4 arcsec)")
    parser.add_argument("--fixed-arcsec", type=float, metavar="ARCSEC",
                        help="one field side in arcsec for every galaxy instead; 19.2 is what the shipped models "
                             "were trained on (default: scale with the radius)")
    parser.add_argument("--pixels", type=int, default=DEFAULT_PIXELS, metavar="N",
                        help=f"output side in pixels (default: {DEFAULT_PIXELS})")
    parser.add_argument("--name-column",
                        help="column naming the output files (default: SDSS J-names from ra/dec, "
                             "like J000251.73+002545.6)")
    parser.add_argument("--ra-column", help="right ascension column, degrees (default: ra, RAJ2000 ..., any case)")
    parser.add_argument("--dec-column", help="declination column, degrees (default: dec, DEJ2000 ..., any case)")


def main(args):
    from pathlib import Path

    from deepscope.galaxy.cutouts.make import CutoutOptions, make_cutouts

    options = CutoutOptions(
        pixels=args.pixels, size_factor=args.size_factor, fixed_arcsec=args.fixed_arcsec,
        radius_column=args.radius_column, name_column=args.name_column, ra_column=args.ra_column,
        dec_column=args.dec_column,
    )
    result = make_cutouts(args.catalog, args.frames, args.out, options)
    print(f"cut out {len(result)} galaxies -> {Path(args.out) / 'cutouts.csv'}")
