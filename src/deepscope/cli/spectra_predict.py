"""Classify stellar spectra on the MK system.

INPUT are spectrum files (FITS image or table, SDSS spec-*.fits, two-column
text, gzipped or not), directories (searched for FITS and MKCLASS files) or
uncompressed .tar shards; --catalog adds the inputs listed in a table.
Writes one row per input: `file`, `sptype` (e.g. `G2V`), `main_class`,
`subclass`, `lum_class`, `code` (1000*A1 + 100*A2 + 2*A3 + 1.5, O=1 ... M=7,
I=1 ... V=5) and `temperature_index`. Bad files are listed on stderr and the
exit status is 1, but every good file still gets its row.

A killed run restarted with the same arguments resumes where it stopped.
--out DIR (no .csv/.parquet suffix) writes Parquet parts into DIR.
--workers N runs on a local Dask cluster, --scheduler ADDRESS on an existing
one; the results are the same as in process.

example:
  deepscope spectra predict ../shared/data/spectra/sdss --out pred.csv
"""


from deepscope.cli.batch_options import add_batch_args

# spectra.workflow.PARTITION_SIZE, written out so that --help imports no numerical library.
PARTITION_SIZE = 1024


def add_args(parser):
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="spectrum files, directories or .tar shards")
    parser.add_argument("--out", required=True, metavar="PRED.csv",
                        help="output table (.csv or .parquet), or a directory for Parquet parts")
    parser.add_argument("--model", metavar="RUN_DIR_OR_PT", help="trained model (default: the shipped one)")
    parser.add_argument("--batch-size", type=int, default=512, help="spectra per forward pass (default 512)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    add_batch_args(parser, "spectra", PARTITION_SIZE)


def main(args):
    from deepscope.spectra.workflow import predict_spectra

    predict_spectra(args.inputs, args.out, model=args.model, catalog=args.catalog, path_column=args.path_column,
                    batch_size=args.batch_size, partition_size=args.partition_size, read_threads=args.read_threads,
                    threads=args.threads, workers=args.workers, scheduler=args.scheduler)
