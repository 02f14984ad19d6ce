"""Classify stellar spectra on the MK system.

INPUT are spectrum files (FITS image or table, SDSS spec-*.fits, two-column
text, gzipped or not), directories (searched for FITS files and text files
that are columns of numbers) or uncompressed .tar shards; --catalog adds the
inputs listed in a table.
Writes one row per input: `file`, `sptype` (e.g. `G2V`), `main_class`,
`subclass`, `lum_class`, `code` (1000*A1 + 100*A2 + 2*A3 + 1.5, O=1 ... M=7,
I=1 ... V=5), `temperature_index`, `confidence` (the calibrated probability
that the main class is right) and `flag`: empty for an ordinary star, else
`;`-separated reasons not to trust the type - low_snr (S/N per pixel < 5),
short_coverage (< 90% of 3850-4620 A), missing_mk_lines (< 50% of it: the
type columns and confidence are left empty), negative_flux, out_of_distribution
(no training spectrum resembles it: not a normal star, or broken), no_rv
(no radial velocity could be measured: typed as read); then `rv_kms`, the
radial velocity (km/s, positive receding, -1000..+1000) measured and undone
before typing, and `rv_err_kms`, its error.
--drop-flagged leaves flagged rows out. Bad files are listed on stderr and the
exit status is 1, but every good file still gets its row.

Bulk tables (Parquet, or a FITS binary table of many rows) hold one spectrum
per row in array columns: --wave-column (default `wavelength`, Angstrom
unless the column records a unit), --flux-column (default `flux`) and
optional --ivar-column name them, --vacuum says the wavelengths are vacuum.
Each row's `file` is TABLE#row (or the --id-column value), and the table's
one-value-per-row columns (ids, coordinates) follow the predictions. Bad rows
are listed as TABLE#row and every good row is still written. --rv-column
names a column of known radial velocities (km/s), used instead of measured
ones (an empty cell is measured).
For FITS tables and text files with a header line (`wavelength,flux`; the
delimiter is sniffed) the same options name the columns.

A killed run restarted with the same arguments resumes where it stopped.
--out DIR (no .csv/.parquet suffix) writes Parquet parts into DIR.
--workers N runs on a local Dask cluster, --scheduler ADDRESS on an existing
one; the results are the same as in process.

examples:
  deepscope spectra predict ../shared/data/spectra/sdss --out pred.csv
  deepscope spectra predict survey.parquet --flux-column f_lambda --id-column objid --out pred.parquet
"""


from deepscope.cli.options import add_batch_args, add_network_args, batch_options_from_args

PARTITION_SIZE = 1024


def add_args(parser):
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="spectrum files, directories or .tar shards (default: none; --catalog may list them)")
    parser.add_argument("--out", required=True, metavar="PRED.csv",
                        help="output table (.csv or .parquet), or a directory for Parquet parts (required)")
    add_network_args(parser, "spectra")
    add_batch_args(parser, "spectra", PARTITION_SIZE, batch_size=512)
    parser.add_argument("--wave-column", metavar="NAME",
                        help="column of wavelengths (or log-wavelengths, if named e.g. loglam) "
                             "(default: the known names; bulk tables: wavelength)")
    parser.add_argument("--flux-column", metavar="NAME",
                        help="column of fluxes (default: the known names; bulk tables: flux)")
    parser.add_argument("--ivar-column", metavar="NAME",
                        help="column of inverse variances; pixels with ivar <= 0 are ignored (default: none)")
    parser.add_argument("--vacuum", action="store_true",
                        help="wavelengths that no header describes are vacuum, not air (default: air)")
    parser.add_argument("--id-column", metavar="NAME",
                        help="bulk tables: column whose value is each row's `file` (default: TABLE#row)")
    parser.add_argument("--rv-column", metavar="NAME",
                        help="bulk tables: column of each row's known radial velocity in km/s, undone instead of "
                             "a measured one; an empty value is measured (default: measure every row)")
    parser.add_argument("--drop-flagged", action="store_true",
                        help="leave out rows whose flag is not empty (default: keep them, flagged)")


def main(args):
    from deepscope.spectra.predictor import predict_spectra
    from deepscope.spectra.io.spectrum import ColumnNames

    columns = ColumnNames(args.wave_column, args.flux_column, args.ivar_column)
    predict_spectra(args.inputs, args.out, model=args.model, options=batch_options_from_args(args),
                    columns=columns, default_medium="vacuum" if args.vacuum else "air", id_column=args.id_column,
                    drop_flagged=args.drop_flagged, rv_column=args.rv_column)
