"""Classify stellar spectra on the MK system.

INPUT are spectrum files (FITS image or table, SDSS spec-*.fits, two-column
text, gzipped or not) or directories (searched for FITS and MKCLASS files).
Writes one row per input: `file`, `sptype` (e.g. `G2V`), `main_class`,
`subclass`, `lum_class`, `code` (1000*A1 + 100*A2 + 2*A3 + 1.5, O=1 ... M=7,
I=1 ... V=5) and `temperature_index`. Bad files are listed on stderr and the
exit status is 1, but every good file still gets its row.

example:
  deepscope spectra predict ../shared/data/spectra/sdss --out pred.csv
"""


def add_args(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="spectrum files or directories")
    parser.add_argument("--out", required=True, metavar="PRED.csv", help="output table (.csv or .parquet)")
    parser.add_argument("--model", metavar="RUN_DIR_OR_PT", help="trained model (default: the shipped one)")
    parser.add_argument("--batch-size", type=int, default=512, help="spectra per forward pass (default 512)")
    parser.add_argument("--workers", type=int, default=2, help="file-reading threads (default 2)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")


def main(args):
    from deepscope.spectra.workflow import predict_spectra

    predict_spectra(args.inputs, args.out, model=args.model, batch_size=args.batch_size,
                    workers=args.workers, threads=args.threads)
