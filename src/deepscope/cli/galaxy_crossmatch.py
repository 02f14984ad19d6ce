"""Cross-match a galaxy sample with label catalogues on the sky.

Each sample row gets the columns of the nearest row of every label
catalogue (e.g. Galaxy Zoo 2 vote fractions, the Nair & Abraham 2010 bar
flag) within --radius arcsec, plus the separation in <name>_sep_arcsec,
where <name> is the label file's stem. Label columns whose names are
already taken are prefixed with <name>_. Sample rows without a match in
every catalogue are dropped unless --keep-unmatched. Coordinates are
degrees, in columns ra/dec, RAJ2000/DEJ2000, _RAJ2000/_DEJ2000,
RA_ICRS/DE_ICRS or objra/objdec (SDSS spectra, MaNGA; any case) unless
named. Match counts are logged on stderr.

Examples:

  deepscope galaxy crossmatch sample.parquet gz2_hart16.fits na10.csv \\
      --radius 2 --out sample_labelled.parquet

  # the galaxies common to the two bundled SDSS data sets (9 of them):
  deepscope galaxy crossmatch ../shared/data/galaxy/sdss_gz2_bars/labels.csv \\
      ../shared/data/galaxy/sdss_gz_ellip_spiral/labels.csv --radius 2 --out overlap.csv
"""


def add_args(parser):
    parser.add_argument("sample", metavar="SAMPLE", help="sample table (.csv, .fits, .parquet)")
    parser.add_argument("labels", nargs="+", metavar="LABELS", help="label catalogue(s) (.csv, .fits, .parquet)")
    parser.add_argument("--out", required=True, help="output table, .csv or .parquet (required)")
    parser.add_argument("--radius", type=float, default=2.0, metavar="ARCSEC",
                        help="largest separation accepted as a match (default: 2 arcsec)")
    parser.add_argument("--keep-unmatched", action="store_true", help="keep sample rows without a match, with empty labels (default: drop them)")
    parser.add_argument("--ra-column", help="sample right ascension column, degrees (default: the first of "
                        "ra, RAJ2000, _RAJ2000, RA_ICRS, objra present, any case)")
    parser.add_argument("--dec-column", help="sample declination column, degrees (default: the one paired "
                        "with the ra column: dec, DEJ2000, _DEJ2000, DE_ICRS, objdec)")
    parser.add_argument("--label-ra-column", help="right ascension column of the label catalogues "
                        "(default: found as for --ra-column)")
    parser.add_argument("--label-dec-column", help="declination column of the label catalogues "
                        "(default: found as for --dec-column)")


def main(args):
    from deepscope.galaxy.crossmatch import crossmatch_files

    matched, total = crossmatch_files(
        args.sample, args.labels, args.out, args.radius, keep_unmatched=args.keep_unmatched,
        ra_column=args.ra_column, dec_column=args.dec_column, label_ra_column=args.label_ra_column,
        label_dec_column=args.label_dec_column,
    )
    print(f"wrote {matched} of {total} sample rows -> {args.out}")
