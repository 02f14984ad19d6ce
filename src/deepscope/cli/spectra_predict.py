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


from deepscope.cli.options import (add_batch_args, add_device_arg, add_model_arg, add_threads_arg,
                                   batch_options_from_args)

PARTITION_SIZE = 1024


def add_args(parser):
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="spectrum files, directories or .tar shards (default: none; --catalog may list them)")
    parser.add_argument("--out", required=True, metavar="PRED.csv",
                        help="output table (.csv or .parquet), or a directory for Parquet parts (required)")
    add_model_arg(parser, "spectra")
    add_device_arg(parser)
    add_threads_arg(parser)
    add_batch_args(parser, "spectra", PARTITION_SIZE, batch_size=512)


def main(args):
    from deepscope.spectra.predictor import predict_spectra

    predict_spectra(args.inputs, args.out, model=args.model, options=batch_options_from_args(args))
