"""Report what this installation can do, for bug reports and cluster set-up.

Prints the versions of deepscope and its libraries, CPU threads, CUDA/MPS,
torch.distributed backends, Dask (and, with --scheduler, the workers of a
running scheduler), and checks the shipped models against their SHA-256 sums.
Exits with status 1 if a shipped model is damaged or the scheduler is unreachable.

example:
  deepscope doctor
  deepscope doctor --scheduler tcp://10.0.0.5:8786 --timeout 5 --json > doctor.json
"""


def add_args(parser):
    parser.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler to connect to, tcp://host:port (default: none, only the local checks)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the scheduler (default 5)")
    parser.add_argument("--check-dask-local", action="store_true",
                        help="also start a one-worker local Dask cluster (takes a few seconds)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def main(args):
    import dataclasses
    import json

    from deepscope.core.doctor import diagnose, format_table
    from deepscope.errors import DeepscopeError, InputError

    if args.timeout <= 0:
        msg = f"--timeout must be positive, got {args.timeout}"
        raise InputError(msg)
    diagnosis = diagnose(args.scheduler, args.timeout, args.check_dask_local)
    print(json.dumps(dataclasses.asdict(diagnosis), indent=2) if args.json else format_table(diagnosis))
    if diagnosis.problems:
        msg = "; ".join(diagnosis.problems)
        raise DeepscopeError(msg)
