"""Select a galaxy sample from a catalogue with magnitude, redshift and size cuts.

Keeps galaxies with r_min < r < r_max, z < z_max and radius_min <= R50 <=
radius_max (arcsec): bright enough to show structure, near enough to be
resolved, large enough on the sky (defaults: 14 < r < 17.4, z < 0.2,
5-30 arcsec). The catalogue is CSV, FITS or Parquet with SDSS column names;
the magnitude is the first present of petroMag_r, modelMag_r, r,
cModelMag_r (then the photoObj array columns petroMag, modelMag, cModelMag)
unless --mag-column names one. photoObj-style array columns holding the five
bands u, g, r, i, z per row are read one band at a time: name the element
(petroMag[2] or petroMag[r]) or the column with --band. Rows left after each
cut are logged on stderr. The output (CSV or Parquet, by suffix) keeps every
column.

Examples:

  deepscope galaxy select sdss_galaxies.fits --out sample.parquet --z-max 0.1

  # a photoObj table (PETROMAG, PETROR50 with 5 bands per row):
  deepscope galaxy select photoObj.fits --mag-column petroMag --radius-column petroR50 --band r --out s.csv

  # runnable anywhere, on a synthetic catalogue with SDSS columns:
  python -c "from deepscope.galaxy.synthetic import synthetic_catalog as c; c().to_csv('cat.csv', index=False)"
  deepscope galaxy select cat.csv --out sample.csv
"""


def add_args(parser):
    parser.add_argument("catalog", metavar="CATALOG", help="catalogue table (.csv, .fits, .parquet)")
    parser.add_argument("--out", required=True, metavar="SAMPLE", help="output table, .csv or .parquet (required)")
    parser.add_argument("--mag-column",
                        help="magnitude column, or one element of an array column: petroMag[2] "
                             "(default: first of petroMag_r, modelMag_r, r, cModelMag_r, petroMag, modelMag, "
                             "cModelMag)")
    parser.add_argument("--z-column", default="z", help="redshift column (default: z)")
    parser.add_argument("--radius-column", default="petroR50_r",
                        help="half-light radius column, arcsec; an array column takes an index: petroR50[2] "
                             "(default: petroR50_r)")
    parser.add_argument("--band", default="r", choices=list("ugriz"),
                        help="band read from array columns named without an index (PETROMAG holds u, g, r, i, z), "
                             "and whose magnitude the default --mag-column looks for (default: r)")
    parser.add_argument("--r-min", type=float, default=14.0, help="bright limit: keep r > R_MIN (default: 14)")
    parser.add_argument("--r-max", type=float, default=17.4, help="faint limit: keep r < R_MAX (default: 17.4)")
    parser.add_argument("--z-max", type=float, default=0.2, help="keep z < Z_MAX (default: 0.2)")
    parser.add_argument("--radius-min", type=float, default=5.0, help="keep radius >= RADIUS_MIN arcsec (default: 5)")
    parser.add_argument("--radius-max", type=float, default=30.0, help="keep radius <= RADIUS_MAX arcsec (default: 30)")


def main(args):
    from deepscope.galaxy.catalog import select_sample_file

    selected, total = select_sample_file(
        args.catalog, args.out, r_min=args.r_min, r_max=args.r_max, z_max=args.z_max, radius_min=args.radius_min,
        radius_max=args.radius_max, mag_column=args.mag_column, z_column=args.z_column,
        radius_column=args.radius_column, band=args.band,
    )
    print(f"selected {selected} of {total} galaxies -> {args.out}")
